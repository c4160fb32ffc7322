"""Verify a webhook's ``Stripe-Signature`` with the SDK, against every configured secret.

This is the fast path the endpoint runs for every delivery:
``stripe.WebhookSignature.verify_header`` checks the HMAC and the timestamp
(~30 µs) without building a ``StripeObject`` tree as ``construct_event`` does;
the caller parses the body itself (orjson). During a secret rotation several
secrets are configured and a delivery signed with any of them is accepted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import stripe

from paydesk.errors import PaydeskError

DEFAULT_TOLERANCE_SECONDS = 300

# Looked up once: the SDK resolves its top-level names through a lazy-import module
# ``__getattr__`` (a few µs on every access, on the endpoint's hot path).
_WebhookSignature = stripe.WebhookSignature
_SignatureVerificationError = stripe.SignatureVerificationError

# The SDK says why it refused only in its message; these are its stable prefixes.
_REASONS = (
    ("No Stripe-Signature header", "signature_missing"),
    ("Unable to extract timestamp", "signature_malformed"),
    ("No signatures found with expected scheme", "signature_malformed"),
    ("Timestamp outside the tolerance zone", "signature_expired"),
    ("No signatures found matching", "signature_invalid"),
)

# When secrets disagree (one matches but the delivery is too old, another does
# not match at all) the most telling reason is reported.
_PRECEDENCE = {
    "signature_expired": 0,
    "signature_invalid": 1,
    "signature_malformed": 2,
    "signature_missing": 3,
}


class SignatureRejected(PaydeskError):
    """The delivery's signature is missing, malformed, wrong or too old.

    ``code`` is the reason: ``signature_missing``, ``signature_malformed``,
    ``signature_invalid`` or ``signature_expired``. Not a subclass of a mapped
    error on purpose: the HTTP layer answers it with its default 400.
    """

    code = "signature_invalid"


def _reason_of(exc: stripe.SignatureVerificationError) -> str:
    message = str(exc.user_message or exc)
    for prefix, reason in _REASONS:
        if message.startswith(prefix):
            return reason
    return "signature_invalid"


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Return if ``header`` signs ``payload`` with one of ``secrets`` within ``tolerance``.

    Raises ``SignatureRejected`` otherwise (``secrets`` must not be empty).
    """
    if not header:
        raise SignatureRejected("The Stripe-Signature header is missing.", code="signature_missing")
    if not secrets:
        raise ValueError("no webhook secret to verify against")
    text = payload.decode("utf-8", errors="replace")
    best: str | None = None
    for secret in secrets:
        try:
            _WebhookSignature.verify_header(text, header, secret, tolerance)
        except _SignatureVerificationError as exc:
            reason = _reason_of(exc)
            if best is None or _PRECEDENCE[reason] < _PRECEDENCE[best]:
                best = reason
            continue
        # The SDK refuses only timestamps older than the tolerance; one from the future
        # would stay replayable until then, so it is refused the same way.
        if tolerance and _timestamp_of(header) > time.time() + tolerance:
            best = "signature_expired"
            break
        return
    reason = best or "signature_invalid"
    messages = {
        "signature_missing": "The Stripe-Signature header is missing.",
        "signature_malformed": "The Stripe-Signature header is malformed.",
        "signature_expired": "The signature's timestamp is outside the tolerance.",
        "signature_invalid": "No signature matches the payload for any configured secret.",
    }
    raise SignatureRejected(messages[reason], code=reason)


def _timestamp_of(header: str) -> int:
    """The ``t=`` of a header the SDK has just accepted, read the way the SDK reads it."""
    items = [item.split("=", 2) for item in header.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload`` (tests, ``paydesk`` tooling)."""
    return str(_WebhookSignature.generate_signature_header(payload, secret, timestamp))
