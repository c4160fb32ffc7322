"""Realistically sized Stripe events (~3.7 kB, like a real payment_intent event)."""

from __future__ import annotations

import uuid
from typing import Any

BASE_TIME = 1_790_000_000
STATES = (
    ("payment_intent.created", "requires_payment_method"),
    ("payment_intent.requires_action", "requires_action"),
    ("payment_intent.processing", "processing"),
    ("payment_intent.succeeded", "succeeded"),
)


def _intent(index: int, status: str, created: int) -> dict[str, Any]:
    pi = f"pi_3Q{index:010d}bench{index % 97:02d}"
    amount = 1000 + index % 9000
    return {
        "id": pi,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount if status == "succeeded" else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{pi}_secret_{uuid.uuid4().hex}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": "usd",
        "customer": f"cus_R{index % 5000:012d}",
        "description": f"Premium subscription, order #{index}",
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": f"ch_3Q{index:010d}charge" if status == "succeeded" else None,
        "livemode": False,
        # Merchants attach order context; this brings the event to ~3.7 kB, the size of
        # Stripe's own payment_intent sample event at the pinned API version.
        "metadata": {
            "order_id": str(index),
            "tier": "premium",
            "user_id": f"user_{index % 5000}",
            **{f"line_item_{n}": f"sku_{(index + n) % 1000:04d} x1 @ 9.99 USD" for n in range(48)},
        },
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": f"pm_1Q{index:010d}card",
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": f"customer{index % 5000}@example.com",
        "review": None,
        "setup_future_usage": None,
        "shipping": {
            "address": {
                "city": "San Francisco",
                "country": "US",
                "line1": "510 Townsend St",
                "line2": None,
                "postal_code": "94103",
                "state": "CA",
            },
            "carrier": None,
            "name": "Jenny Rosen",
            "phone": None,
            "tracking_number": None,
        },
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def event(index: int, *, run: str) -> dict[str, Any]:
    """Event ``index`` of a run: four events per PaymentIntent, one second apart."""
    intent, step = divmod(index, len(STATES))
    event_type, status = STATES[step]
    created = BASE_TIME + intent + step
    return {
        "id": f"evt_3Q{run}{index:010d}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "data": {"object": _intent(intent, status, created), "previous_attributes": None},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_{uuid.uuid4().hex[:14]}", "idempotency_key": str(uuid.uuid4())},
        "type": event_type,
    }
