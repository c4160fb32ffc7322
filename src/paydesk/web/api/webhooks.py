"""``POST /api/webhooks/stripe``: verify, store durably, then acknowledge.

The order is the contract with Stripe: nothing is answered 2xx before it is
committed, so an event is never lost; a refused delivery is answered 400 and
recorded without its payload; a database outage is a 503 and Stripe retries.

Deliveries are the one hot path of the API, so they are served by a thin ASGI
handler (``serve_delivery``, which the app calls before any of its own layers)
that skips routing and middleware (so also the access log); the FastAPI route
below runs the same ``handle_delivery`` and documents the endpoint in OpenAPI.
Successful deliveries are logged at DEBUG; refusals and outages at WARNING.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.types import Receive, Scope, Send

from paydesk.errors import PaydeskError, ServiceUnavailable
from paydesk.logs import get_logger
from paydesk.stripe_gateway.webhook_signature import (
    DEFAULT_TOLERANCE_SECONDS,
    SignatureRejected,
    verify_signature,
)
from paydesk.web.errors import internal_error_body, status_for
from paydesk.webhooks.events import NotAnEvent, parse_event
from paydesk.webhooks.receive import Inbox, UnstorableEvent

log = get_logger(__name__)
_stdlib_log = logging.getLogger(__name__)

PATH = "/api/webhooks/stripe"
MAX_BODY_BYTES = 512 * 1024

router = APIRouter(tags=["webhooks"])

_RECEIVED = b'{"received":true,"duplicate":false}'
_DUPLICATE = b'{"received":true,"duplicate":true}'


class LivemodeMismatch(PaydeskError):
    """A live event on a test deployment, or a test event on a live one; answered 400."""

    code = "livemode_mismatch"


class PayloadTooLarge(PaydeskError):
    """The body exceeds the size cap; answered with 400 like any refused delivery."""

    code = "payload_too_large"


def _database_errors() -> tuple[type[BaseException], ...]:
    import psycopg

    return (OperationalError, InterfaceError, PoolTimeoutError, psycopg.OperationalError, OSError)


def inbox_of(state: Any) -> Inbox:
    """The app's inbox (created on first use, bound to the app's engine)."""
    inbox: Inbox | None = getattr(state, "webhook_inbox", None)
    if inbox is None:
        inbox = Inbox(state.engine)
        state.webhook_inbox = inbox
    return inbox


async def _read_capped(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
        parts.append(chunk)
    return b"".join(parts)


def _error(
    status: int, code: str, message: str, request_id: str, retry: bool = False
) -> tuple[int, bytes, dict[str, str]]:
    # The shape of every Paydesk error (paydesk.web.errors.error_body).
    body = {"error": {"code": code, "message": message, "field": None, "request_id": request_id}}
    headers = {"Retry-After": "5"} if retry else {}
    return status, orjson.dumps(body), headers


async def handle_delivery(
    state: Any,
    chunks: AsyncIterator[bytes],
    *,
    content_length: str | None,
    signature: str | None,
    source: str | None,
    request_id: str,
) -> tuple[int, bytes, dict[str, str]]:
    """Verify, store and answer one delivery: (status, JSON body, extra headers)."""
    settings = state.settings
    secrets = [secret.get_secret_value() for secret in settings.stripe_webhook_secrets]
    inbox = inbox_of(state)
    if not secrets:
        missing = ServiceUnavailable(
            "No webhook secret is configured (STRIPE_WEBHOOK_SECRET).",
            code="webhook_secret_missing",
        )
        log.error("webhook_secret_missing")
        return _error(status_for(missing), missing.code, missing.message, request_id, True)
    try:
        body = await _read_capped(chunks, content_length, MAX_BODY_BYTES)
    except PayloadTooLarge as exc:
        await inbox.record_rejection(exc.code, source, MAX_BODY_BYTES)
        return _error(status_for(exc), exc.code, exc.message, request_id)
    try:
        verify_signature(body, signature, secrets, tolerance=DEFAULT_TOLERANCE_SECONDS)
        event = parse_event(body)
    except (SignatureRejected, NotAnEvent) as exc:
        await inbox.record_rejection(exc.code, source, len(body))
        return _error(status_for(exc), exc.code, exc.message, request_id)
    if event.livemode != (settings.key_mode == "live"):
        # Signed with this endpoint's secret, yet of the other mode: a test secret in
        # production or a live endpoint pointed at staging (the guide's troubleshooting).
        # Applying it would mix live money into test figures, or the reverse.
        mismatch = LivemodeMismatch(
            "The event's livemode does not match this deployment's Stripe key mode."
        )
        await inbox.record_rejection(mismatch.code, source, len(body))
        log.error("webhook_livemode_mismatch", event_id=event.event_id, livemode=event.livemode)
        return _error(status_for(mismatch), mismatch.code, mismatch.message, request_id)
    try:
        new = await inbox.store(event)
    except UnstorableEvent as exc:
        await inbox.record_rejection(exc.code, source, len(body))
        return _error(status_for(exc), exc.code, exc.message, request_id)
    except _database_errors() as exc:
        log.warning("database_unavailable", error_type=type(exc).__name__)
        return _error(
            503,
            "database_unavailable",
            "The database is unavailable; retry shortly.",
            request_id,
            True,
        )
    if _stdlib_log.isEnabledFor(logging.DEBUG):  # hot path: build the event only if shown
        log.debug("webhook_stored", event_id=event.event_id, type=event.type, duplicate=not new)
    return 200, (_RECEIVED if new else _DUPLICATE), {}


@router.post(
    PATH,
    summary="Receive a Stripe event",
    response_description="Stored (or already stored): the event is durable.",
)
async def receive_stripe_event(request: Request) -> Response:
    """Verify ``Stripe-Signature``, store the event once, commit, then answer 200.

    400 (``signature_missing|malformed|invalid|expired``, ``not_an_event``,
    ``payload_too_large``): refused, not stored, recorded. 503: the database is
    unavailable or no secret is configured; Stripe retries.
    """
    status, body, headers = await handle_delivery(
        request.app.state,
        request.stream(),
        content_length=request.headers.get("content-length"),
        signature=_one_signature(request.headers.getlist("stripe-signature")),
        source=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None) or f"req_{uuid.uuid4().hex}",
    )
    return Response(body, status_code=status, headers=headers, media_type="application/json")


# What verification sees for a delivery with several Stripe-Signature headers: it has no
# "t=", so it is refused as signature_malformed (and recorded like any refusal).
AMBIGUOUS_SIGNATURE = "several Stripe-Signature headers"


def _one_signature(values: list[str]) -> str | None:
    """The delivery's Stripe-Signature, or ``AMBIGUOUS_SIGNATURE`` if it has several."""
    if len(values) > 1:
        return AMBIGUOUS_SIGNATURE
    return values[0] if values else None


def is_delivery(scope: Scope) -> bool:
    """Whether ``scope`` is a ``POST /api/webhooks/stripe`` request."""
    return bool(scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST")


_JSON = (b"content-type", b"application/json")


async def serve_delivery(state: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one delivery as a bare ASGI handler (the app calls it before its own layers).

    Nothing above this runs for a delivery: no routing, no middleware. An unexpected
    error is therefore answered here, as the error layer would: 500, Paydesk's error
    shape, logged.
    """
    # A random request id like the middleware's (req_ + 32 hex), without uuid's overhead.
    request_id = "req_" + os.urandom(16).hex()
    length = signature = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value.decode("latin-1")
        elif name == b"stripe-signature":
            # Several headers: which one counts would be a guess, so none does.
            signature = AMBIGUOUS_SIGNATURE if signature is not None else value.decode("latin-1")

    async def chunks() -> AsyncIterator[bytes]:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            yield message.get("body", b"")
            more = message.get("more_body", False)

    client = scope.get("client")
    try:
        status, body, extra = await handle_delivery(
            state,
            chunks(),
            content_length=length,
            signature=signature,
            source=client[0] if client else None,
            request_id=request_id,
        )
    except Exception:  # answered like the error layer answers it
        log.exception("webhook_delivery_failed", request_id=request_id)
        status, body, extra = 500, internal_error_body(request_id), {}
    response_headers = [
        _JSON,
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    for name, value in extra.items():
        response_headers.append((name.lower().encode(), value.encode()))
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})
