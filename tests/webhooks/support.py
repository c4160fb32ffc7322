"""Helpers for webhook tests: signed synthetic events and a served Paydesk."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from paydesk.settings import Settings, load_settings
from paydesk.stripe_gateway import pinned_api_version
from paydesk.stripe_gateway.webhook_signature import sign_payload
from paydesk.web import create_app
from tests.support.servers import serve_in_thread

SECRET = "whsec_" + "t3st" * 8
OLD_SECRET = "whsec_" + "0ld5" * 8
TEST_KEY = "sk_test_" + "w" * 24

_counter = itertools.count(1)


def event_dict(
    event_type: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    event_id: str | None = None,
    api_version: str | None = None,
) -> dict[str, Any]:
    """A Stripe-shaped event wrapping ``obj``."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": api_version or pinned_api_version(),
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }


def payment_intent(
    pi_id: str | None = None, *, status: str = "succeeded", amount: int = 2000, **extra: Any
) -> dict[str, Any]:
    """A PaymentIntent object with the fields the mirror reads."""
    return {
        "id": pi_id or f"pi_{next(_counter):06d}{uuid.uuid4().hex[:10]}",
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": "usd",
        "status": status,
        "created": int(time.time()),
        "livemode": False,
        "customer": None,
        "capture_method": "automatic",
        "description": None,
        "receipt_email": None,
        "payment_method": "pm_1",
        "latest_charge": None,
        "last_payment_error": None,
        "metadata": {},
        **extra,
    }


def signed(
    event: dict[str, Any], secret: str = SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery of ``event`` signed with ``secret``."""
    body = orjson.dumps(event)
    header = sign_payload(body.decode(), secret, timestamp)
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}


def settings_for(database_url: str, *secrets: str, **extra: str) -> Settings:
    """Development settings on ``database_url`` accepting ``secrets``."""
    environ = {
        "PAYDESK_DATABASE_URL": database_url,
        "STRIPE_WEBHOOK_SECRET": ",".join(secrets or (SECRET,)),
        **extra,
    }
    return load_settings(environ)


@contextmanager
def served(settings: Settings) -> Iterator[httpx.Client]:
    """Paydesk on a loopback port; yields a client with that base URL."""
    with serve_in_thread(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        yield client


def deliver(client: httpx.Client, event: dict[str, Any], **kwargs: Any) -> httpx.Response:
    """POST ``event`` signed to the webhook endpoint."""
    body, headers = signed(event, **kwargs)
    return client.post("/api/webhooks/stripe", content=body, headers=headers)
