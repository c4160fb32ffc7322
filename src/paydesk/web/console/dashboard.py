"""Dashboard figures from the mirror, month by month.

MRR and its movements come from ``paydesk.analytics.business`` (the same exact
figures the Prometheus metrics export); payment, refund and dispute counts are
simple monthly buckets of the mirror tables, read for the last ``MONTHS`` months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paydesk.analytics.business import mrr_series
from paydesk.db.models import Dispute, Payment, Refund, StripeEvent, Subscription

MONTHS = 6
LIVE_STATUSES = ("active", "trialing", "past_due")


def _month_starts(now: datetime, count: int) -> list[datetime]:
    year, month = now.year, now.month
    starts = []
    for _ in range(count):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(starts))


@dataclass
class Dashboard:
    """KPI tiles and the series behind the charts (amounts in major units of USD)."""

    labels: list[str] = field(default_factory=list)
    mrr: list[float] = field(default_factory=list)
    new_mrr: list[float] = field(default_factory=list)
    churned_mrr: list[float] = field(default_factory=list)
    succeeded: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)
    refunded: list[float] = field(default_factory=list)
    disputes: list[float] = field(default_factory=list)
    mrr_now: float = 0
    active_subscriptions: int = 0
    success_rate_30d: float | None = None
    refunds_30d: float = 0
    open_disputes: int = 0
    events_by_status: dict[str, int] = field(default_factory=dict)


def build(session: Session, *, now: datetime | None = None) -> Dashboard:
    """Compute the dashboard from the mirror as of ``now``."""
    now = now or datetime.now(UTC)
    starts = _month_starts(now, MONTHS)
    ends = [*starts[1:], datetime.max.replace(tzinfo=UTC)]
    board = Dashboard(labels=[start.strftime("%b") for start in starts])
    since = int(starts[0].timestamp())

    for movement in mrr_series(session, now, MONTHS, "usd"):
        board.mrr.append(round(float(movement.mrr_end) / 100, 2))
        board.new_mrr.append(
            round(float(movement.new + movement.reactivation + movement.expansion) / 100, 2)
        )
        board.churned_mrr.append(round(float(movement.churn + movement.contraction) / 100, 2))
    board.mrr_now = board.mrr[-1] if board.mrr else 0
    board.active_subscriptions = int(
        session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.status.in_(LIVE_STATUSES))
        )
        or 0
    )

    payments = session.execute(
        select(Payment.stripe_created, Payment.status).where(Payment.stripe_created >= since)
    ).all()
    refunds = session.execute(
        select(Refund.stripe_created, Refund.amount, Refund.status).where(
            Refund.stripe_created >= since
        )
    ).all()
    disputes = session.execute(
        select(Dispute.stripe_created).where(Dispute.stripe_created >= since)
    ).all()
    for start, end in zip(starts, ends, strict=True):
        lo, hi = start.timestamp(), end.timestamp()
        board.succeeded.append(
            sum(1 for created, status in payments if lo <= created < hi and status == "succeeded")
        )
        board.failed.append(
            sum(
                1
                for created, status in payments
                if lo <= created < hi and status in ("requires_payment_method", "canceled")
            )
        )
        board.refunded.append(
            round(sum(amount for created, amount, _ in refunds if lo <= created < hi) / 100, 2)
        )
        board.disputes.append(sum(1 for (created,) in disputes if lo <= created < hi))

    month_ago = now.timestamp() - 30 * 86400
    recent = [status for created, status in payments if created >= month_ago]
    ok = sum(1 for status in recent if status == "succeeded")
    bad = sum(1 for status in recent if status in ("requires_payment_method", "canceled"))
    board.success_rate_30d = round(100 * ok / (ok + bad), 1) if ok + bad else None
    board.refunds_30d = round(
        sum(amount for created, amount, _ in refunds if created >= month_ago) / 100, 2
    )
    board.open_disputes = int(
        session.scalar(
            select(func.count())
            .select_from(Dispute)
            .where(Dispute.status.in_(("needs_response", "warning_needs_response", "under_review")))
        )
        or 0
    )
    board.events_by_status = {
        str(status): int(count)
        for status, count in session.execute(
            select(StripeEvent.status, func.count()).group_by(StripeEvent.status)
        )
    }
    return board
