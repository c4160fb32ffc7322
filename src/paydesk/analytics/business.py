"""Business metrics: payments, MRR and churn, disputes, refunds, read from the rollups.

Every function takes a session and a currency and reads; none writes or commits.
The figures come from the rollups the worker maintains (``paydesk.analytics.rollups``):
whole UTC days of a window from ``analytics_daily``, its partial first and last days
from indexed range queries on the mirror, MRR from ``mrr_daily`` and
``mrr_segments``. They equal the from-scratch definitions of
``paydesk.analytics.reference`` exactly (property tests compare them).
Windows are half-open ``[start, end)`` in Unix seconds (the mirror's
``stripe_created`` is Unix seconds). Money is integer minor units; ratios are
exact ``Fraction``s and ``None`` when their denominator is zero. The formulas
are documented, denominator by denominator, in ``docs/METRICS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any

from sqlalchemy import BigInteger, and_, case, func, literal, null, or_, select, union_all
from sqlalchemy.orm import Session

from paydesk.db.models import Dispute, Payment, Refund, Subscription
from paydesk.db.models.analytics import DailyRollup, MrrCustomer, MrrDaily, MrrSegment

DAY = 86_400  # rollups are per UTC day

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


def day_of(moment: int) -> int:
    """The UTC midnight (Unix seconds) of the day of ``moment``."""
    return moment - moment % DAY


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


@dataclass(frozen=True)
class RefundMetrics:
    """Succeeded refunds created in the window."""

    count: int
    amount: int
    refund_rate: Fraction | None  # count / succeeded payments created in the window


@dataclass(frozen=True)
class DisputeMetrics:
    """Disputes opened in the window, and those resolved in it."""

    opened: int
    dispute_rate: Fraction | None  # opened / succeeded payments created in the window
    resolved: int
    mean_resolution_seconds: Fraction | None  # mean of closed_at − created of the resolved


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


# --- reading the rollups -----------------------------------------------------------------


def _sync(session: Session) -> None:
    """Bring the rollups up to this session's own unflushed/uncommitted mirror writes."""
    from paydesk.analytics import rollups

    rollups.refresh(session)


def split(start: int, end: int) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
    """``[start, end)`` as whole UTC days (read from rollups) and partial edges (from rows)."""
    if end <= start:
        return None, []
    first = -(-start // DAY) * DAY  # the first midnight at or after start
    last = day_of(end)
    if first >= last:
        return None, [(start, end)]
    edges = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return (first, last), edges


def _within(column: Any, ranges: list[tuple[Any, Any]]) -> Any:
    """``column`` in one of the half-open ``ranges`` (disjoint: a window's partial days).

    One query for both partial days of a window (an index scan per range), not one each.
    """
    return or_(*(and_(column >= a, column < b) for a, b in ranges))


def _daily(
    session: Session, days: tuple[int, int] | None, currency: str, *columns: Any
) -> list[int]:
    if days is None:
        return [0] * len(columns)
    row = session.execute(
        select(*(func.coalesce(func.sum(c), 0) for c in columns)).where(
            DailyRollup.currency == currency,
            DailyRollup.day >= days[0],
            DailyRollup.day < days[1],
        )
    ).one()
    return [int(v) for v in row]


def payment_metrics(session: Session, start: int, end: int, currency: str) -> PaymentMetrics:
    """Outcomes of the payments created in ``[start, end)`` in ``currency``.

    Succeeded: status ``succeeded``. Failed: not succeeded and a failure recorded
    (a decline leaves the intent in ``requires_payment_method`` with its code;
    a canceled intent that had failed counts as failed). Others (pending, needing
    action, canceled without failure) have no outcome yet and are left out.
    """
    _sync(session)
    currency = currency.lower()
    days, edges = split(start, end)
    succeeded, failed, volume = _daily(
        session,
        days,
        currency,
        DailyRollup.payments_succeeded,
        DailyRollup.payments_failed,
        DailyRollup.payments_volume,
    )
    if edges:
        ok, bad, amount = session.execute(
            select(
                func.count().filter(Payment.status == "succeeded"),
                func.count().filter(
                    Payment.status != "succeeded", Payment.failure_code.is_not(None)
                ),
                func.coalesce(
                    func.sum(Payment.amount_received).filter(Payment.status == "succeeded"), 0
                ),
            ).where(Payment.currency == currency, _within(Payment.stripe_created, edges))
        ).one()
        succeeded, failed, volume = succeeded + int(ok), failed + int(bad), volume + int(amount)
    return PaymentMetrics(succeeded=succeeded, failed=failed, volume=volume)


def refund_metrics(
    session: Session, start: int, end: int, currency: str, *, payments: PaymentMetrics
) -> RefundMetrics:
    """Refunds with status ``succeeded`` created in ``[start, end)`` in ``currency``."""
    _sync(session)
    currency = currency.lower()
    days, edges = split(start, end)
    count, amount = _daily(
        session, days, currency, DailyRollup.refunds_succeeded, DailyRollup.refunds_amount
    )
    if edges:
        n, total = session.execute(
            select(func.count(), func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.currency == currency,
                Refund.status == "succeeded",
                _within(Refund.stripe_created, edges),
            )
        ).one()
        count, amount = count + int(n), amount + int(total)
    return RefundMetrics(count, amount, ratio(count, payments.succeeded))


def dispute_metrics(
    session: Session, start: int, end: int, currency: str, *, payments: PaymentMetrics
) -> DisputeMetrics:
    """Disputes created in ``[start, end)``; resolution time of those closed in it."""
    _sync(session)
    currency = currency.lower()
    days, edges = split(start, end)
    opened, resolved, seconds = _daily(
        session,
        days,
        currency,
        DailyRollup.disputes_opened,
        DailyRollup.disputes_resolved,
        DailyRollup.disputes_resolution_seconds,
    )
    if edges:
        opened += int(
            session.scalar(
                select(func.count()).where(
                    Dispute.currency == currency, _within(Dispute.stripe_created, edges)
                )
            )
            or 0
        )
        closed_edges = [
            (datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)) for a, b in edges
        ]
        for created, closed_at in session.execute(
            select(Dispute.stripe_created, Dispute.closed_at).where(
                Dispute.currency == currency, _within(Dispute.closed_at, closed_edges)
            )
        ):
            if closed_at is not None:
                resolved += 1
                seconds += unix(closed_at) - int(created)
    return DisputeMetrics(
        opened=opened,
        dispute_rate=ratio(opened, payments.succeeded),
        resolved=resolved,
        mean_resolution_seconds=ratio(seconds, resolved),
    )


def new_subscriptions(session: Session, start: int, end: int, currency: str) -> int:
    """Subscriptions created in ``[start, end)``, any tier, that started (not incomplete)."""
    _sync(session)
    currency = currency.lower()
    days, edges = split(start, end)
    (count,) = _daily(session, days, currency, DailyRollup.subscriptions_new)
    if edges:
        count += int(
            session.scalar(
                select(func.count()).where(
                    Subscription.currency == currency,
                    Subscription.status.not_in(NEVER_STARTED_STATUSES),
                    _within(Subscription.stripe_created, edges),
                )
            )
            or 0
        )
    return count


def _fractions(rows: Any) -> tuple[Fraction, int]:
    """Sum of (denominator, numerator sum, count) rows as one exact amount and a count."""
    total, count = Fraction(0), 0
    for den, num, n in rows:
        total += Fraction(int(num or 0), int(den))
        count += int(n or 0)
    return total, count


def mrr_level(session: Session, moment: int, currency: str) -> tuple[Fraction, int]:
    """MRR at ``moment`` and the number of customers paying then (docs/METRICS.md)."""
    return mrr_levels(session, [moment], currency)[moment]


def mrr_levels(
    session: Session, moments: list[int], currency: str
) -> dict[int, tuple[Fraction, int]]:
    """``mrr_level`` of each of ``moments``, in two queries whatever their number.

    The segments with ``valid_from <= moment < valid_to``: those started minus those
    ended by then, from ``mrr_daily`` for the days before ``moment``'s and from the
    segments themselves (by index) on its day.
    """
    moments = sorted(set(moments))
    if not moments:
        return {}
    days: dict[int, list[tuple[int, int, int]]] = {}
    for day, den, num, n in session.execute(
        select(
            MrrDaily.day,
            MrrDaily.amount_den,
            func.sum(MrrDaily.started_num - MrrDaily.ended_num),
            func.sum(MrrDaily.started - MrrDaily.ended),
        )
        .where(MrrDaily.currency == currency, MrrDaily.day < day_of(moments[-1]))
        .group_by(MrrDaily.day, MrrDaily.amount_den)
    ):
        days.setdefault(int(day), []).append((int(den), int(num or 0), int(n or 0)))
    parts = []
    for i, moment in enumerate(moments):
        today = day_of(moment)
        for sign, column in ((1, MrrSegment.valid_from), (-1, MrrSegment.valid_to)):
            parts.append(
                select(
                    literal(i).label("i"),
                    literal(sign).label("sign"),
                    MrrSegment.amount_den,
                    func.sum(MrrSegment.amount_num).label("num"),
                    func.count().label("n"),
                )
                .where(MrrSegment.currency == currency, column >= today, column <= moment)
                .group_by(MrrSegment.amount_den)
            )
    same_day: dict[int, list[tuple[int, int, int]]] = {}
    for i, sign, den, num, n in session.execute(union_all(*parts)):
        same_day.setdefault(int(i), []).append((int(den), sign * int(num), sign * int(n)))
    # Running integer sums per denominator over the days, in order, moment by moment.
    levels: dict[int, tuple[Fraction, int]] = {}
    running: dict[int, list[int]] = {}
    ordered = sorted(days.items())
    position = 0
    for i, moment in enumerate(moments):
        today = day_of(moment)
        while position < len(ordered) and ordered[position][0] < today:
            for den, num, n in ordered[position][1]:
                entry = running.setdefault(den, [0, 0])
                entry[0] += num
                entry[1] += n
            position += 1
        amount, count = _fractions((den, num, n) for den, (num, n) in running.items())
        extra, extra_count = _fractions(same_day.get(i, []))
        levels[moment] = (amount + extra, count + extra_count)
    return levels


def moved_by_category(
    session: Session, start: int, end: int, currency: str, only: Any = None
) -> dict[str, tuple[Fraction, int]]:
    """Movements over ``[start, end)``: category → (exact amount, customers).

    Only customers with a segment starting or ending in ``(start, end]`` can have
    a different MRR at ``end`` than at ``start``; the others move nothing. A
    customer's segments do not overlap, so for such a customer the segment giving
    its MRR at ``start`` (if any) ends in ``(start, end]``, and the one giving it at
    ``end`` starts in ``(start, end]`` (a segment covering both would overlap the
    one that touched the window). Both come from two index range scans of the
    window, whatever the table's size; each customer is then classified in SQL by
    comparing two exact fractions (cross-multiplied), and the amounts come back
    summed per category and denominator. ``only`` (a CTE of ``customer_id``)
    limits them to some customers. A customer touched whose MRR is the same at
    both ends counts as a contraction of 0 (as in ``paydesk.analytics.months``).
    """
    seg = MrrSegment
    none = null().cast(BigInteger)
    ending = select(
        seg.customer_id,
        case((seg.valid_from <= start, seg.amount_num), else_=none).label("wn"),
        case((seg.valid_from <= start, seg.amount_den), else_=none).label("wd"),
        none.label("xn"),
        none.label("xd"),
        none.label("fresh"),
    ).where(seg.currency == currency, seg.valid_to > start, seg.valid_to <= end)
    after = seg.valid_to.is_(None) | (seg.valid_to > end)
    starting = select(
        seg.customer_id,
        none.label("wn"),
        none.label("wd"),
        case((after, seg.amount_num), else_=none).label("xn"),
        case((after, seg.amount_den), else_=none).label("xd"),
        none.label("fresh"),
    ).where(seg.currency == currency, seg.valid_from > start, seg.valid_from <= end)
    # A customer arriving at end (no MRR at start, some at end) first paid no later than
    # end; it is new if that was in the window, else a reactivation: a third index range
    # scan, of the window's first payers, grouped with the others (a join would have
    # the planner probe mrr_customers once per customer).
    first = select(
        MrrCustomer.customer_id,
        none.label("wn"),
        none.label("wd"),
        none.label("xn"),
        none.label("xd"),
        literal(1, BigInteger).label("fresh"),
    ).where(
        MrrCustomer.currency == currency,
        MrrCustomer.paid_from > start,
        MrrCustomer.paid_from <= end,
    )
    if only is not None:
        ending = ending.where(seg.customer_id.in_(select(only.c.customer_id)))
        starting = starting.where(seg.customer_id.in_(select(only.c.customer_id)))
    edges = union_all(ending, starting, first).subquery("edges")
    c = edges.c
    moved = (
        select(
            c.customer_id,
            func.max(c.wn).label("wn"),
            func.max(c.wd).label("wd"),
            func.max(c.xn).label("xn"),
            func.max(c.xd).label("xd"),
            func.max(c.fresh).label("fresh"),
        )
        .group_by(c.customer_id)
        .cte("moved")
    )
    m = moved.c
    grows = m.xn * m.wd > m.wn * m.xd
    category = case(
        (and_(m.wn.is_(None), m.xn.is_not(None), m.fresh.is_(None)), "reactivation"),
        (and_(m.wn.is_(None), m.xn.is_not(None)), "new"),
        (and_(m.wn.is_not(None), m.xn.is_(None)), "churn"),
        (and_(m.wn.is_not(None), grows), "expansion"),
        (m.wn.is_not(None), "contraction"),
        else_="none",
    ).label("category")
    numerator = case(
        (m.wn.is_(None), m.xn),
        (m.xn.is_(None), m.wn),
        (grows, m.xn * m.wd - m.wn * m.xd),
        else_=m.wn * m.xd - m.xn * m.wd,
    )
    denominator = case((m.wn.is_(None), m.xd), (m.xn.is_(None), m.wd), else_=m.wd * m.xd).label(
        "den"
    )
    inner = select(category, denominator, numerator.label("num")).subquery()
    totals: dict[str, tuple[Fraction, int]] = {}
    for name, den, num, count in session.execute(
        select(inner.c.category, inner.c.den, func.sum(inner.c.num), func.count()).group_by(
            inner.c.category, inner.c.den
        )
    ):
        if name == "none":
            continue
        amount, customers = totals.get(name, (Fraction(0), 0))
        totals[name] = (amount + Fraction(int(num), int(den)), customers + int(count))
    return totals


def movements_of(start: int, end: int, totals: dict[str, tuple[Fraction, int]]) -> MrrMovements:
    """Movements (levels left at zero) from category → (amount, customers) totals."""
    zero = Fraction(0)

    def amount(name: str) -> Fraction:
        return totals.get(name, (zero, 0))[0]

    return MrrMovements(
        start=start,
        end=end,
        mrr_start=zero,
        mrr_end=zero,
        new=amount("new"),
        reactivation=amount("reactivation"),
        expansion=amount("expansion"),
        contraction=amount("contraction"),
        churn=amount("churn"),
        customers_start=0,
        customers_end=0,
        churned_customers=totals.get("churn", (zero, 0))[1],
    )


def _moved(session: Session, start: int, end: int, currency: str) -> MrrMovements:
    """Movements over ``[start, end)`` without the levels (filled in by the caller)."""
    return movements_of(start, end, moved_by_category(session, start, end, currency))


def _movements(
    session: Session,
    start: int,
    end: int,
    currency: str,
    levels: dict[int, tuple[Fraction, int]],
    moved: MrrMovements | None = None,
) -> MrrMovements:
    missing = [moment for moment in (start, end) if moment not in levels]
    levels.update(mrr_levels(session, missing, currency))
    if moved is None:
        moved = _moved(session, start, end, currency)
    (mrr_start, customers_start), (mrr_end, customers_end) = levels[start], levels[end]
    return MrrMovements(
        start=start,
        end=end,
        mrr_start=mrr_start,
        mrr_end=mrr_end,
        new=moved.new,
        reactivation=moved.reactivation,
        expansion=moved.expansion,
        contraction=moved.contraction,
        churn=moved.churn,
        customers_start=customers_start,
        customers_end=customers_end,
        churned_customers=moved.churned_customers,
    )


def mrr_movements(session: Session, start: int, end: int, currency: str) -> MrrMovements:
    """MRR at ``start`` and ``end`` and the movements between, customer by customer."""
    _sync(session)
    return _movements(session, start, end, currency.lower(), {})


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
    """MRR movements month by month for the last ``months`` months (this one so far).

    The movements of each month come from its ``mrr_months`` rows; those of the
    month so far too, corrected for the few customers with a segment starting or
    ending after ``now`` in it (``paydesk.analytics.months``).
    """
    from paydesk.analytics import months as stored

    _sync(session)
    currency = currency.lower()
    bounds = month_starts(now, months)
    levels = mrr_levels(session, bounds, currency)
    moved = stored.month_movements(session, currency, bounds)
    return [_movements(session, a, b, currency, levels, moved[a]) for a, b in pairwise(bounds)]
