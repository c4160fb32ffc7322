"""Signed but poisonous events: refused (4xx, recorded) before they join a batch, so the
good deliveries batched alongside are stored; events of the other Stripe mode refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paydesk.db.engine import create_engine
from paydesk.db.models import StripeEvent, WebhookRejection
from tests.webhooks.support import deliver, event_dict, payment_intent, served, settings_for

POISONS: dict[str, dict[str, Any]] = {
    "nul-in-id": {"id": "evt_poison\u0000id"},
    "nul-in-type": {"type": "payment_intent.succeeded\u0000"},
    "nul-in-object-id": {"data": {"object": payment_intent("pi_poison\u0000x")}},
    "created-2^63": {"created": 2**63},
    "created-minus-2^63": {"created": -(2**63)},
    "created-huge-negative": {"created": -(2**40)},
    "livemode-not-bool": {"livemode": "yes"},
}


def _counts(url: str) -> tuple[int, dict[str, int]]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            stored = session.scalar(select(func.count()).select_from(StripeEvent)) or 0
            rejected = dict(
                session.execute(
                    select(WebhookRejection.reason, func.sum(WebhookRejection.count)).group_by(
                        WebhookRejection.reason
                    )
                ).all()
            )
    finally:
        engine.dispose()
    return int(stored), {str(k): int(v) for k, v in rejected.items()}


@pytest.mark.parametrize("poison", list(POISONS), ids=list(POISONS))
def test_a_poison_event_is_refused_and_its_batch_mates_are_stored(
    migrated_url: str, poison: str
) -> None:
    good = [
        event_dict("payment_intent.succeeded", payment_intent(f"pi_good{n}")) for n in range(40)
    ]
    bad = event_dict("payment_intent.succeeded", payment_intent("pi_bad")) | POISONS[poison]
    with served(settings_for(migrated_url)) as client:

        def send(event: dict[str, Any]) -> int:
            with httpx.Client(base_url=str(client.base_url), timeout=60) as one:
                return deliver(one, event).status_code

        # Concurrently, so that the bad one would be batched with good ones.
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(send, [*good[:20], bad, *good[20:]]))
    assert statuses[20] == 400, statuses
    assert statuses[:20] + statuses[21:] == [200] * 40
    stored, rejected = _counts(migrated_url)
    assert stored == 40
    assert rejected == {"not_an_event": 1}


@pytest.mark.parametrize(("livemode", "key_mode"), [(True, "test")], ids=["live-event-on-test"])
def test_an_event_of_the_other_mode_is_refused_and_recorded(
    migrated_url: str, livemode: bool, key_mode: str
) -> None:
    from tests.test_settings import SK_TEST

    settings = settings_for(migrated_url, STRIPE_SECRET_KEY=SK_TEST)
    assert settings.key_mode == key_mode
    event = event_dict("payment_intent.succeeded", payment_intent("pi_live")) | {
        "livemode": livemode
    }
    with served(settings) as client:
        response = deliver(client, event)
        genuine = deliver(client, event_dict("payment_intent.succeeded", payment_intent("pi_t")))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "livemode_mismatch"
    assert genuine.status_code == 200
    stored, rejected = _counts(migrated_url)
    assert stored == 1
    assert rejected == {"livemode_mismatch": 1}
