"""Business metrics recomputed from scratch: the definitions of docs/METRICS.md as code.

This is what ``paydesk.analytics.business`` computed before the rollups: it reads
whole tables and parses every stored subscription event. It is the yardstick of
the tests (rollup-based figures must equal these exactly), and its span logic
(``span_of``) is what the rollups apply to one subscription at a time. No request
or scrape calls its whole-table functions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from fractions import Fraction
from itertools import pairwise
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from paydesk.analytics.business import (
    ENDED_STATUSES,
    NEVER_STARTED_STATUSES,
    NOT_REVENUE_STATUSES,
    SUBSCRIPTION_EVENTS,
    DisputeMetrics,
    MrrMovements,
    Overview,
    PaymentMetrics,
    RefundMetrics,
    SubscriptionSpan,
    month_starts,
    monthly_amount,
    ratio,
    unix,
)
from paydesk.db.models import Dispute, Payment, Refund, StripeEvent, Subscription


def payment_metrics(session: Session, start: int, end: int, currency: str) -> PaymentMetrics:
    """Outcomes of the payments created in ``[start, end)`` in ``currency``.

    Succeeded: status ``succeeded``. Failed: not succeeded and a failure recorded
    (a decline leaves the intent in ``requires_payment_method`` with its code;
    a canceled intent that had failed counts as failed). Others (pending, needing
    action, canceled without failure) have no outcome yet and are left out.
    """
    in_window = and_(
        Payment.currency == currency.lower(),
        Payment.stripe_created >= start,
        Payment.stripe_created < end,
    )
    succeeded, volume = session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount_received), 0)).where(
            in_window, Payment.status == "succeeded"
        )
    ).one()
    failed = session.scalar(
        select(func.count()).where(
            in_window, Payment.status != "succeeded", Payment.failure_code.is_not(None)
        )
    )
    return PaymentMetrics(succeeded=int(succeeded), failed=int(failed or 0), volume=int(volume))


def refund_metrics(
    session: Session, start: int, end: int, currency: str, *, payments: PaymentMetrics
) -> RefundMetrics:
    """Refunds with status ``succeeded`` created in ``[start, end)`` in ``currency``."""
    count, amount = session.execute(
        select(func.count(), func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.currency == currency.lower(),
            Refund.status == "succeeded",
            Refund.stripe_created >= start,
            Refund.stripe_created < end,
        )
    ).one()
    return RefundMetrics(int(count), int(amount), ratio(int(count), payments.succeeded))


def dispute_metrics(
    session: Session, start: int, end: int, currency: str, *, payments: PaymentMetrics
) -> DisputeMetrics:
    """Disputes created in ``[start, end)``; resolution time of those closed in it."""
    opened = session.scalar(
        select(func.count()).where(
            Dispute.currency == currency.lower(),
            Dispute.stripe_created >= start,
            Dispute.stripe_created < end,
        )
    )
    closed = session.execute(
        select(Dispute.stripe_created, Dispute.closed_at).where(
            Dispute.currency == currency.lower(),
            Dispute.closed_at.is_not(None),
            Dispute.closed_at >= datetime.fromtimestamp(start, UTC),
            Dispute.closed_at < datetime.fromtimestamp(end, UTC),
        )
    ).all()
    durations = [unix(closed_at) - created for created, closed_at in closed if closed_at]
    return DisputeMetrics(
        opened=int(opened or 0),
        dispute_rate=ratio(int(opened or 0), payments.succeeded),
        resolved=len(durations),
        mean_resolution_seconds=ratio(sum(durations), len(durations)),
    )


def _ended(row: Any) -> int | None:
    if row.ended_at is not None:
        return unix(row.ended_at)
    if row.status in ENDED_STATUSES:
        # Ended without a recorded time: count it from when Stripe says it was canceled.
        return unix(row.canceled_at) if row.canceled_at is not None else row.stripe_created
    return None


def _event_monthly(payload: str) -> Fraction | None:
    """The monthly amount of the subscription in a stored event's payload, if readable."""
    try:
        item = json.loads(payload)["data"]["object"]["items"]["data"][0]
        price = item["price"]
        recurring = price.get("recurring") or {}
        return monthly_amount(
            int(price.get("unit_amount") or 0),
            str(recurring.get("interval") or "month"),
            int(recurring.get("interval_count") or 1),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None


def price_history(
    session: Session, subscription_ids: Iterable[str] | None = None
) -> dict[str, list[tuple[int, Fraction]]]:
    """Subscription id → (event time, monthly amount) from the stored subscription events.

    The mirror keeps a subscription's current price only; its earlier prices are
    in the ``customer.subscription.*`` events of the webhook inbox. With
    ``subscription_ids``, only those subscriptions' events are read (by index).
    """
    history: dict[str, list[tuple[int, Fraction]]] = defaultdict(list)
    query = (
        select(StripeEvent.object_id, StripeEvent.created, StripeEvent.payload)
        .where(StripeEvent.type.in_(SUBSCRIPTION_EVENTS), StripeEvent.object_id.is_not(None))
        .order_by(StripeEvent.created, StripeEvent.id)
    )
    if subscription_ids is not None:
        query = query.where(StripeEvent.object_id.in_(list(subscription_ids)))
    for object_id, created, payload in session.execute(query):
        amount = _event_monthly(payload)
        if amount is not None and object_id:
            history[object_id].append((int(created), amount))
    return dict(history)


def span_of(row: Any, history: list[tuple[int, Fraction]]) -> SubscriptionSpan:
    """A subscription's span: its events' amounts in turn, then the mirror's current one.

    Without events, the current amount applies from creation. The first event's
    amount applies from creation; each later one after its time; the mirror's
    amount (0 for the free tier) after the row's ``source_time`` if it differs.
    """
    current = (
        Fraction(0)
        if row.tier == "free"
        else monthly_amount(row.unit_amount, row.interval, row.interval_count)
    )
    if not history:
        return SubscriptionSpan(row.customer_id, current, row.stripe_created, _ended(row))
    changes = [
        (when, amount)
        for (when, amount), (_, before) in zip(history[1:], history, strict=False)
        if amount != before
    ]
    last_time, last = history[-1]
    if current != last:
        changes.append((max(last_time, row.source_time), current))
    return SubscriptionSpan(
        row.customer_id, history[0][1], row.stripe_created, _ended(row), tuple(changes)
    )


def revenue_spans(session: Session, currency: str) -> list[SubscriptionSpan]:
    """The subscriptions in ``currency`` that paid something at some time."""
    rows = session.scalars(
        select(Subscription).where(
            Subscription.currency == currency.lower(),
            Subscription.status.not_in(NOT_REVENUE_STATUSES),
        )
    ).all()
    history = price_history(session) if rows else {}
    spans = [span_of(row, history.get(row.stripe_id, [])) for row in rows]
    return [s for s in spans if s.monthly > 0 or any(a > 0 for _, a in s.changes)]


def mrr_by_customer(spans: Iterable[SubscriptionSpan], moment: int) -> dict[str, Fraction]:
    """Each paying customer's MRR at ``moment`` (customers at zero left out)."""
    totals: dict[str, Fraction] = defaultdict(Fraction)
    for span in spans:
        amount = span.monthly_at(moment)
        if amount > 0:
            totals[span.customer_id] += amount
    return dict(totals)


def mrr_movements(session: Session, start: int, end: int, currency: str) -> MrrMovements:
    """MRR at ``start`` and ``end`` and the movements between, customer by customer."""
    return movements_of(revenue_spans(session, currency), start, end)


def movements_of(spans: list[SubscriptionSpan], start: int, end: int) -> MrrMovements:
    """``mrr_movements`` on spans already loaded (one query for a whole series)."""
    before = mrr_by_customer(spans, start)
    after = mrr_by_customer(spans, end)
    paid_before = {span.customer_id for span in spans if span.paid_before(start)}
    new = reactivation = expansion = contraction = churn = Fraction(0)
    churned = 0
    for customer in before.keys() | after.keys():
        was, now = before.get(customer, Fraction(0)), after.get(customer, Fraction(0))
        if was == 0:
            if customer in paid_before:
                reactivation += now
            else:
                new += now
        elif now == 0:
            churn += was
            churned += 1
        elif now > was:
            expansion += now - was
        else:
            contraction += was - now
    return MrrMovements(
        start=start,
        end=end,
        mrr_start=sum(before.values(), Fraction(0)),
        mrr_end=sum(after.values(), Fraction(0)),
        new=new,
        reactivation=reactivation,
        expansion=expansion,
        contraction=contraction,
        churn=churn,
        customers_start=len(before),
        customers_end=len(after),
        churned_customers=churned,
    )


def new_subscriptions(session: Session, start: int, end: int, currency: str) -> int:
    """Subscriptions created in ``[start, end)``, any tier, that started (not incomplete)."""
    count = session.scalar(
        select(func.count()).where(
            Subscription.currency == currency.lower(),
            Subscription.status.not_in(NEVER_STARTED_STATUSES),
            Subscription.stripe_created >= start,
            Subscription.stripe_created < end,
        )
    )
    return int(count or 0)


def overview(session: Session, start: int, end: int, currency: str) -> Overview:
    """All the business metrics of ``[start, end)`` in ``currency``."""
    currency = currency.lower()
    payments = payment_metrics(session, start, end, currency)
    return Overview(
        start=start,
        end=end,
        currency=currency,
        payments=payments,
        refunds=refund_metrics(session, start, end, currency, payments=payments),
        disputes=dispute_metrics(session, start, end, currency, payments=payments),
        mrr=mrr_movements(session, start, end, currency),
        new_subscriptions=new_subscriptions(session, start, end, currency),
    )


def mrr_series(session: Session, now: datetime, months: int, currency: str) -> list[MrrMovements]:
    """MRR movements month by month for the last ``months`` months (this one so far)."""
    spans = revenue_spans(session, currency)
    bounds = month_starts(now, months)
    return [movements_of(spans, a, b) for a, b in pairwise(bounds)]
