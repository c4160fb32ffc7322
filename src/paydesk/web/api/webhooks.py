"""``POST /api/webhooks/stripe``: verify, store durably, then acknowledge.

The order is the contract with Stripe: nothing is answered 2xx before it is
committed, so an event is never lost; a refused delivery is answered 400 and
recorded without its payload; a database outage is a 503 and Stripe retries.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paydesk.errors import PaydeskError, ServiceUnavailable
from paydesk.stripe_gateway.webhook_signature import (
    DEFAULT_TOLERANCE_SECONDS,
    SignatureRejected,
    verify_signature,
)
from paydesk.webhooks.events import NotAnEvent, parse_event
from paydesk.webhooks.receive import Inbox

MAX_BODY_BYTES = 512 * 1024

router = APIRouter(tags=["webhooks"])

_RECEIVED = b'{"received":true,"duplicate":false}'
_DUPLICATE = b'{"received":true,"duplicate":true}'


class PayloadTooLarge(PaydeskError):
    """The body exceeds the size cap; answered with 400 like any refused delivery."""

    code = "payload_too_large"


def inbox_of(request: Request) -> Inbox:
    """The app's inbox (created on first use, bound to the app's engine)."""
    state: Any = request.app.state
    inbox: Inbox | None = getattr(state, "webhook_inbox", None)
    if inbox is None:
        inbox = Inbox(state.engine)
        state.webhook_inbox = inbox
    return inbox


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/api/webhooks/stripe",
    summary="Receive a Stripe event",
    response_description="Stored (or already stored): the event is durable.",
)
async def receive_stripe_event(request: Request) -> Response:
    """Verify ``Stripe-Signature``, store the event once, commit, then answer 200."""
    settings = request.app.state.settings
    secrets = [secret.get_secret_value() for secret in settings.stripe_webhook_secrets]
    inbox = inbox_of(request)
    source = request.client.host if request.client else None
    if not secrets:
        raise ServiceUnavailable(
            "No webhook secret is configured (STRIPE_WEBHOOK_SECRET).",
            code="webhook_secret_missing",
        )
    try:
        body = await _read_capped(request, MAX_BODY_BYTES)
    except PayloadTooLarge as exc:
        await inbox.record_rejection(exc.code, source, MAX_BODY_BYTES)
        raise
    try:
        verify_signature(
            body,
            request.headers.get("stripe-signature"),
            secrets,
            tolerance=DEFAULT_TOLERANCE_SECONDS,
        )
        event = parse_event(body)
    except (SignatureRejected, NotAnEvent) as exc:
        await inbox.record_rejection(exc.code, source, len(body))
        raise
    new = await inbox.store(event)
    return Response(_RECEIVED if new else _DUPLICATE, media_type="application/json")
