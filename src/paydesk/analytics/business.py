"""Business metrics computed from the mirror: payments, MRR and churn, disputes, refunds.

Every function takes a session and a currency and reads; none writes or commits.
Windows are half-open ``[start, end)`` in Unix seconds (the mirror's
``stripe_created`` is Unix seconds). Money is integer minor units; ratios are
exact ``Fraction``s and ``None`` when their denominator is zero. The formulas
are documented, denominator by denominator, in ``docs/METRICS.md``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from itertools import pairwise

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from paydesk.db.models import Dispute, Payment, Refund, StripeEvent, Subscription

# Subscription statuses that never collected money (and may never): left out of MRR.
NOT_REVENUE_STATUSES = ("incomplete", "incomplete_expired", "trialing")
# Subscriptions that never started: left out of the new-subscription count.
NEVER_STARTED_STATUSES = ("incomplete", "incomplete_expired")
SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
ENDED_STATUSES = ("canceled", "incomplete_expired")

# Months per billing interval, for monthly normalisation (a year is 12 months,
# a week 52/12 of a month... expressed as "intervals per month").
_PER_MONTH: dict[str, Fraction] = {
    "day": Fraction(365, 12),
    "week": Fraction(52, 12),
    "month": Fraction(1),
    "year": Fraction(1, 12),
}


def ratio(numerator: int | Fraction, denominator: int | Fraction) -> Fraction | None:
    """``numerator / denominator`` exactly, or None when the denominator is zero."""
    if denominator == 0:
        return None
    return Fraction(numerator) / Fraction(denominator)


def round_minor(value: Fraction) -> int:
    """Round an exact amount to whole minor units, halves away from zero."""
    return int(
        (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
    )


def unix(moment: datetime) -> int:
    """A timezone-aware (or UTC-naive) datetime as Unix seconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


# --- payments, refunds, disputes ---------------------------------------------------


@dataclass(frozen=True)
class PaymentMetrics:
    """Payments created in the window, by outcome."""

    succeeded: int
    failed: int
    volume: int  # sum of amount_received of succeeded payments, minor units

    @property
    def attempts(self) -> int:
        """Payments that reached an outcome (succeeded or failed)."""
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> Fraction | None:
        """succeeded / attempts."""
        return ratio(self.succeeded, self.attempts)

    @property
    def failure_rate(self) -> Fraction | None:
        """failed / attempts."""
        return ratio(self.failed, self.attempts)

    @property
    def average_value(self) -> Fraction | None:
        """volume / succeeded, exact (round with ``round_minor`` to show)."""
        return ratio(self.volume, self.succeeded)


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


@dataclass(frozen=True)
class RefundMetrics:
    """Succeeded refunds created in the window."""

    count: int
    amount: int
    refund_rate: Fraction | None  # count / succeeded payments created in the window


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


@dataclass(frozen=True)
class DisputeMetrics:
    """Disputes opened in the window, and those resolved in it."""

    opened: int
    dispute_rate: Fraction | None  # opened / succeeded payments created in the window
    resolved: int
    mean_resolution_seconds: Fraction | None  # mean of closed_at − created of the resolved


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


# --- subscriptions: MRR and its movements --------------------------------------------


@dataclass(frozen=True)
class SubscriptionSpan:
    """What MRR needs of a subscription: who, how much a month, from when to when.

    ``monthly`` applies from creation; each of ``changes`` (time, new monthly
    amount), sorted by time, applies after its time: a tier change.
    """

    customer_id: str
    monthly: Fraction  # monthly-normalised amount, minor units
    created: int
    ended: int | None  # None while it runs
    changes: tuple[tuple[int, Fraction], ...] = ()

    def monthly_at(self, moment: int) -> Fraction:
        """The monthly amount after everything strictly before ``moment`` (0 if inactive)."""
        if not self.active_at(moment):
            return Fraction(0)
        amount = self.monthly
        for when, changed in self.changes:
            if when >= moment:
                break
            amount = changed
        return amount

    def paid_before(self, moment: int) -> bool:
        """Whether it was created, and had a positive amount, strictly before ``moment``."""
        if self.created >= moment:
            return False
        return self.monthly > 0 or any(a > 0 for when, a in self.changes if when < moment)

    def active_at(self, moment: int) -> bool:
        """Whether it is counted in the MRR at ``moment``: created before it, not ended before.

        "At ``moment``" is the state after everything that happened strictly before
        it, so a window ``[a, b)`` moves the MRR from ``mrr_at(a)`` to ``mrr_at(b)``.
        """
        return self.created < moment and (self.ended is None or self.ended >= moment)


def monthly_amount(unit_amount: int, interval: str, interval_count: int) -> Fraction:
    """A price's amount per month: e.g. 12000 a year → 1000, 999 a month → 999."""
    per_month = _PER_MONTH.get(interval)
    if per_month is None or interval_count <= 0:
        return Fraction(0)
    return Fraction(unit_amount) * per_month / interval_count


def _ended(row: Subscription) -> int | None:
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


def price_history(session: Session) -> dict[str, list[tuple[int, Fraction]]]:
    """Subscription id → (event time, monthly amount) from the stored subscription events.

    The mirror keeps a subscription's current price only; its earlier prices are
    in the ``customer.subscription.*`` events of the webhook inbox.
    """
    history: dict[str, list[tuple[int, Fraction]]] = defaultdict(list)
    rows = session.execute(
        select(StripeEvent.object_id, StripeEvent.created, StripeEvent.payload)
        .where(StripeEvent.type.in_(SUBSCRIPTION_EVENTS), StripeEvent.object_id.is_not(None))
        .order_by(StripeEvent.created, StripeEvent.id)
    )
    for object_id, created, payload in rows:
        amount = _event_monthly(payload)
        if amount is not None and object_id:
            history[object_id].append((int(created), amount))
    return dict(history)


def span_of(row: Subscription, history: list[tuple[int, Fraction]]) -> SubscriptionSpan:
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


@dataclass(frozen=True)
class MrrMovements:
    """How MRR moved from ``start`` to ``end``; all exact, minor units per month.

    ``mrr_end == mrr_start + new + reactivation + expansion − contraction − churn``.
    """

    start: int
    end: int
    mrr_start: Fraction
    mrr_end: Fraction
    new: Fraction
    reactivation: Fraction
    expansion: Fraction
    contraction: Fraction
    churn: Fraction
    customers_start: int
    customers_end: int
    churned_customers: int

    @property
    def subscriber_churn_rate(self) -> Fraction | None:
        """Customers paying at start and not at end, over customers paying at start."""
        return ratio(self.churned_customers, self.customers_start)

    @property
    def revenue_churn_rate(self) -> Fraction | None:
        """(churn + contraction) / MRR at start: gross revenue churn."""
        return ratio(self.churn + self.contraction, self.mrr_start)


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


# --- everything for one window -----------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """Every business metric for one window and currency."""

    start: int
    end: int
    currency: str
    payments: PaymentMetrics
    refunds: RefundMetrics
    disputes: DisputeMetrics
    mrr: MrrMovements
    new_subscriptions: int


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


def month_starts(now: datetime, months: int) -> list[int]:
    """Unix starts of the last ``months`` calendar months (UTC) up to ``now``'s, plus an end.

    The result has ``months + 1`` instants: consecutive pairs are the months, the
    last one ending just after ``now``'s second (the month so far, this second included).
    """
    now = now.astimezone(UTC)
    year, month = now.year, now.month
    starts = []
    for _ in range(months):
        starts.append(unix(datetime(year, month, 1, tzinfo=UTC)))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return [*reversed(starts), unix(now) + 1]


def mrr_series(session: Session, now: datetime, months: int, currency: str) -> list[MrrMovements]:
    """MRR movements month by month for the last ``months`` months (this one so far)."""
    spans = revenue_spans(session, currency)
    bounds = month_starts(now, months)
    return [movements_of(spans, a, b) for a, b in pairwise(bounds)]
