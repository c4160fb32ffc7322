"""Synthetic, Stripe-shaped event histories for volume tests (scale-out, benchmark).

Each object gets a chain of events one second apart, so the in-order result is
well defined; histories of different objects interleave.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from tests.webhooks.support import event_dict

BASE_TIME = 1_790_000_000


def _payment(i: int, t: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    pi = f"pi_s{i:07d}"
    base = {
        "id": pi,
        "object": "payment_intent",
        "amount": 500 + i % 9000,
        "currency": "usd",
        "created": t,
        "livemode": False,
        "customer": f"cus_s{i % 997:07d}",
        "capture_method": "automatic",
        "description": f"Order {i}",
        "payment_method": f"pm_s{i:07d}",
        "metadata": {"order": str(i)},
    }
    states = ["requires_payment_method", "requires_action", "processing"]
    final = "succeeded" if rng.random() < 0.8 else "requires_payment_method"
    types = [
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.processing",
    ]
    for step, (status, event_type) in enumerate(zip(states, types, strict=True)):
        yield event_dict(
            event_type, {**base, "status": status, "amount_received": 0}, created=t + step
        )
    if final == "succeeded":
        obj = {**base, "status": "succeeded", "amount_received": base["amount"]}
        yield event_dict("payment_intent.succeeded", obj, created=t + 3)
    else:
        error = {
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Declined",
        }
        obj = {**base, "status": final, "amount_received": 0, "last_payment_error": error}
        yield event_dict("payment_intent.payment_failed", obj, created=t + 3)


def _subscription(i: int, t: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    sub = f"sub_s{i:07d}"
    price = {
        "id": f"price_s{i % 3}",
        "unit_amount": (0, 999, 2999)[i % 3],
        "currency": "usd",
        "recurring": {"interval": "month", "interval_count": 1},
    }
    item = {
        "id": f"si_s{i:07d}",
        "price": price,
        "current_period_start": t,
        "current_period_end": t + 2_592_000,
    }
    base = {
        "id": sub,
        "object": "subscription",
        "customer": f"cus_s{i % 997:07d}",
        "created": t,
        "items": {"data": [item]},
        "cancel_at_period_end": False,
    }
    chain = [
        ("customer.subscription.created", "incomplete"),
        ("customer.subscription.updated", "active"),
    ]
    if rng.random() < 0.5:
        chain += [
            ("customer.subscription.updated", "past_due"),
            ("customer.subscription.updated", "active"),
        ]
    if rng.random() < 0.3:
        chain.append(("customer.subscription.deleted", "canceled"))
    for step, (event_type, status) in enumerate(chain):
        extra = {"canceled_at": t + step, "ended_at": t + step} if status == "canceled" else {}
        yield event_dict(event_type, {**base, "status": status, **extra}, created=t + step)


def _customer(i: int, t: int, _rng: random.Random) -> Iterator[dict[str, Any]]:
    cus = {
        "id": f"cus_s{i:07d}",
        "object": "customer",
        "created": t,
        "email": f"u{i}@example.com",
        "name": f"User {i}",
        "invoice_settings": {"default_payment_method": None},
        "metadata": {},
    }
    yield event_dict("customer.created", cus, created=t)
    yield event_dict("customer.updated", {**cus, "email": f"user{i}@example.org"}, created=t + 1)


def _refund(i: int, t: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    refund = {
        "id": f"re_s{i:07d}",
        "object": "refund",
        "payment_intent": f"pi_s{i:07d}",
        "charge": f"ch_s{i:07d}",
        "amount": 100 + i,
        "currency": "usd",
        "created": t,
        "status": "pending",
        "reason": "requested_by_customer",
        "metadata": {},
    }
    yield event_dict("refund.created", refund, created=t)
    status = "succeeded" if rng.random() < 0.9 else "failed"
    yield event_dict("refund.updated", {**refund, "status": status}, created=t + 1)


def _dispute(i: int, t: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    dispute = {
        "id": f"dp_s{i:07d}",
        "object": "dispute",
        "payment_intent": f"pi_s{i:07d}",
        "charge": f"ch_s{i:07d}",
        "amount": 2000,
        "currency": "usd",
        "created": t,
        "reason": "fraudulent",
        "status": "needs_response",
        "evidence_details": {"due_by": t + 604_800},
    }
    yield event_dict("charge.dispute.created", dispute, created=t)
    yield event_dict("charge.dispute.updated", {**dispute, "status": "under_review"}, created=t + 1)
    outcome = "won" if rng.random() < 0.5 else "lost"
    yield event_dict("charge.dispute.closed", {**dispute, "status": outcome}, created=t + 2)


_KINDS = (_payment, _payment, _payment, _subscription, _customer, _refund, _dispute)


def history(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """Exactly ``count`` unique events, chronological per object (and overall by ``created``)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    counters = dict.fromkeys(_KINDS, 0)
    index = 0
    while len(events) < count:
        kind = _KINDS[index % len(_KINDS)]
        counters[kind] += 1
        start = BASE_TIME + index * 2
        events.extend(kind(counters[kind] + index * 10, start, rng))
        index += 1
    events = events[:count]
    # Chronological overall; the per-object chains are already one second apart.
    events.sort(key=lambda event: event["created"])
    return events


def unknown_events(count: int) -> list[dict[str, Any]]:
    """Events of a type Paydesk ignores."""
    return [
        event_dict(
            "issuing_card.created",
            {"id": f"ic_s{i:07d}", "object": "issuing.card"},
            created=BASE_TIME + i,
        )
        for i in range(count)
    ]
