"""Redaction of secrets and card numbers in logs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from paydesk.logs import REDACTED, configure_logging, get_logger, redact_text
from tests.test_settings import PK_TEST, RK_LIVE, SK_LIVE, SK_TEST, WHSEC

CARDS = ["4242424242424242", "4000 0025 0000 3155", "4000-0000-0000-0002", "378282246310005"]


@pytest.mark.parametrize("secret", [SK_TEST, SK_LIVE, RK_LIVE, PK_TEST, WHSEC, *CARDS])
def test_redact_text_masks_keys_and_card_numbers(secret: str) -> None:
    redacted = redact_text(f"before {secret} after")
    assert secret not in redacted
    assert REDACTED in redacted
    assert redacted.startswith("before ")
    assert redacted.endswith(" after")


@pytest.mark.parametrize("harmless", ["pi_3MtwBwLkdIwHu7ix", "amount=999", "1700000000", "v1.2.3"])
def test_redact_text_leaves_ordinary_values(harmless: str) -> None:
    assert redact_text(harmless) == harmless


def test_structured_and_stdlib_logs_are_redacted_in_json() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    get_logger("t").info("paid", card=CARDS[0], nested={"key": SK_TEST}, items=[WHSEC])
    logging.getLogger("uvicorn.error").warning("bad header %s", SK_LIVE)
    try:
        raise ValueError(f"secret inside {SK_TEST}")
    except ValueError:
        get_logger("t").exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    assert lines[0]["event"] == "paid"
    assert lines[0]["nested"] == {"key": REDACTED}
    text = stream.getvalue()
    for secret in (CARDS[0], SK_TEST, SK_LIVE, WHSEC):
        assert secret not in text
    assert "ValueError" in text


@pytest.mark.parametrize(
    "identifier",
    ["req_0e04592f0a0741234567890123e1ef", "pi_3MtwBw1234567890123456", "abc4242424242424242"],
)
def test_digit_runs_inside_identifiers_are_not_mistaken_for_cards(identifier: str) -> None:
    assert redact_text(f"request_id={identifier}") == f"request_id={identifier}"


def test_card_numbers_next_to_punctuation_are_redacted() -> None:
    assert CARDS[0] not in redact_text(f'{{"number":"{CARDS[0]}"}}')
    assert CARDS[0] not in redact_text(f"card={CARDS[0]}&cvc=123")
