"""Random mirror histories (hypothesis strategies) and a way to insert them."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import strategies as st
from sqlalchemy.orm import Session

from paydesk.db.models import Dispute, Payment, Refund, StripeEvent, Subscription

BASE = 1_767_225_600  # 2026-01-01T00:00:00Z: offsets below are seconds after it
SPAN = 12  # small, so that instants often coincide with window bounds
CURRENCIES = ("usd", "eur")
_ids = itertools.count()


def at(offset: int) -> datetime:
    """The instant ``offset`` seconds after BASE."""
    return datetime.fromtimestamp(BASE + offset, UTC)


@dataclass(frozen=True)
class P:
    """A payment."""

    created: int
    currency: str
    status: str
    failure_code: str | None
    amount: int
    amount_received: int


@dataclass(frozen=True)
class R:
    """A refund."""

    created: int
    currency: str
    status: str
    amount: int


@dataclass(frozen=True)
class D:
    """A dispute."""

    created: int
    currency: str
    closed_after: int | None


@dataclass(frozen=True)
class S:
    """A subscription."""

    customer: str
    currency: str
    tier: str | None
    unit_amount: int
    interval: str
    interval_count: int
    status: str
    created: int
    ended_after: int | None
    canceled_after: int | None
    # Stored customer.subscription.* events: (seconds after creation, unit_amount).
    events: tuple[tuple[int, int], ...] = ()
    source_after: int = 0  # the mirror row's source_time, seconds after creation


offsets = st.integers(min_value=0, max_value=SPAN)
currencies = st.sampled_from(CURRENCIES)
payments = st.builds(
    P,
    created=offsets,
    currency=currencies,
    status=st.sampled_from(
        ["succeeded", "requires_payment_method", "canceled", "processing", "requires_action"]
    ),
    failure_code=st.sampled_from([None, "card_declined", "expired_card"]),
    amount=st.integers(1, 100_000),
    amount_received=st.integers(0, 100_000),
)
refunds = st.builds(
    R,
    created=offsets,
    currency=currencies,
    status=st.sampled_from(["succeeded", "pending", "failed"]),
    amount=st.integers(1, 50_000),
)
disputes = st.builds(
    D, created=offsets, currency=currencies, closed_after=st.none() | st.integers(0, SPAN)
)
subscriptions = st.builds(
    S,
    customer=st.sampled_from(["cus_A", "cus_B", "cus_C", "cus_D", "cus_E"]),
    currency=currencies,
    tier=st.sampled_from([None, "free", "premium", "enterprise"]),
    unit_amount=st.sampled_from([0, 999, 2999, 1001, 12000]),
    interval=st.sampled_from(["month", "year", "week", "day"]),
    interval_count=st.integers(1, 3),
    status=st.sampled_from(
        ["active", "past_due", "canceled", "incomplete", "incomplete_expired", "trialing"]
    ),
    created=offsets,
    ended_after=st.none() | st.integers(0, SPAN),
    canceled_after=st.none() | st.integers(0, SPAN),
    events=st.lists(
        st.tuples(st.integers(0, SPAN), st.sampled_from([0, 999, 2999])), max_size=3
    ).map(lambda events: tuple(sorted(events, key=lambda e: e[0]))),
    source_after=st.integers(0, SPAN),
)
windows = st.tuples(offsets, offsets).filter(lambda w: w[0] < w[1])


@dataclass(frozen=True)
class History:
    """Everything one example inserts."""

    payments: list[P]
    refunds: list[R]
    disputes: list[D]
    subscriptions: list[S]


histories = st.builds(
    History,
    payments=st.lists(payments, max_size=25),
    refunds=st.lists(refunds, max_size=10),
    disputes=st.lists(disputes, max_size=10),
    subscriptions=st.lists(subscriptions, max_size=15),
)


def insert(session: Session, history: History) -> None:
    """Insert the history's rows (flushed, not committed)."""
    for p in history.payments:
        session.add(
            Payment(
                stripe_id=f"pi_{next(_ids)}",
                stripe_created=BASE + p.created,
                currency=p.currency,
                status=p.status,
                failure_code=p.failure_code,
                amount=p.amount,
                amount_received=p.amount_received,
            )
        )
    for r in history.refunds:
        session.add(
            Refund(
                stripe_id=f"re_{next(_ids)}",
                stripe_created=BASE + r.created,
                currency=r.currency,
                status=r.status,
                amount=r.amount,
            )
        )
    for d in history.disputes:
        closed = None if d.closed_after is None else at(d.created + d.closed_after)
        session.add(
            Dispute(
                stripe_id=f"dp_{next(_ids)}",
                stripe_created=BASE + d.created,
                currency=d.currency,
                status="lost" if closed else "needs_response",
                reason="fraudulent",
                amount=100,
                closed_at=closed,
            )
        )
    for s in history.subscriptions:
        sub_id = f"sub_{next(_ids)}"
        for after, unit_amount in s.events:
            session.add(subscription_event(sub_id, BASE + s.created + after, unit_amount, s))
        session.add(
            Subscription(
                stripe_id=sub_id,
                source_time=BASE + s.created + s.source_after,
                stripe_created=BASE + s.created,
                customer_id=s.customer,
                currency=s.currency,
                tier=s.tier,
                unit_amount=s.unit_amount,
                interval=s.interval,
                interval_count=s.interval_count,
                status=s.status,
                ended_at=None if s.ended_after is None else at(s.created + s.ended_after),
                canceled_at=None if s.canceled_after is None else at(s.created + s.canceled_after),
            )
        )
    session.flush()


def subscription_event(sub_id: str, created: int, unit_amount: int, s: S) -> StripeEvent:
    """A stored ``customer.subscription.updated`` event carrying the subscription's price."""
    price = {
        "unit_amount": unit_amount,
        "currency": s.currency,
        "recurring": {"interval": s.interval, "interval_count": s.interval_count},
    }
    obj = {"id": sub_id, "object": "subscription", "items": {"data": [{"price": price}]}}
    event_id = f"evt_{next(_ids)}"
    return StripeEvent(
        event_id=event_id,
        type="customer.subscription.updated",
        created=created,
        object_id=sub_id,
        status="processed",
        payload=json.dumps(
            {
                "id": event_id,
                "type": "customer.subscription.updated",
                "created": created,
                "data": {"object": obj},
            }
        ),
    )
