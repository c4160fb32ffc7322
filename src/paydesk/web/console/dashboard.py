"""Dashboard figures, month by month, from the analytics rollups.

MRR and its movements come from ``paydesk.analytics.business`` (the same exact
figures the Prometheus metrics export); payment, refund and dispute figures are
sums of the daily rollups (docs/METRICS.md definitions, every currency) over the
last ``MONTHS`` calendar months. Nothing here reads a whole mirror table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from paydesk.analytics import business
from paydesk.analytics.business import mrr_series
from paydesk.db.models import DailyRollup, Dispute, StripeEvent, SubscriptionDaily

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
    board = Dashboard(labels=[start.strftime("%b") for start in starts])

    for movement in mrr_series(session, now, MONTHS, "usd"):
        board.mrr.append(round(float(movement.mrr_end) / 100, 2))
        board.new_mrr.append(
            round(float(movement.new + movement.reactivation + movement.expansion) / 100, 2)
        )
        board.churned_mrr.append(round(float(movement.churn + movement.contraction) / 100, 2))
    board.mrr_now = board.mrr[-1] if board.mrr else 0
    board.active_subscriptions = int(
        session.scalar(
            select(func.coalesce(func.sum(SubscriptionDaily.subscriptions), 0)).where(
                SubscriptionDaily.status.in_(LIVE_STATUSES)
            )
        )
        or 0
    )

    # Whole calendar months are whole UTC days: sums of the daily rollups (all
    # currencies), every month in one grouped query (the last one runs on to now).
    lows = [int(start.timestamp()) for start in starts]
    month = case(
        *((DailyRollup.day >= lo, i) for i, lo in reversed(list(enumerate(lows)))), else_=-1
    ).label("month")
    sums = {
        int(i): (int(ok), int(bad), int(refunded), int(opened))
        for i, ok, bad, refunded, opened in session.execute(
            select(
                month,
                func.coalesce(func.sum(DailyRollup.payments_succeeded), 0),
                func.coalesce(func.sum(DailyRollup.payments_failed), 0),
                func.coalesce(func.sum(DailyRollup.refunds_amount), 0),
                func.coalesce(func.sum(DailyRollup.disputes_opened), 0),
            )
            .where(DailyRollup.day >= lows[0])
            .group_by(month)
        )
    }
    for i in range(len(starts)):
        ok, bad, refunded, opened = sums.get(i, (0, 0, 0, 0))
        board.succeeded.append(ok)
        board.failed.append(bad)
        board.refunded.append(round(refunded / 100, 2))
        board.disputes.append(opened)

    # The last 30 days, as docs/METRICS.md defines the figures, over every currency.
    end_30 = int(now.timestamp()) + 1
    start_30 = end_30 - 30 * 86400
    ok = bad = refunded_30 = 0
    for currency in session.scalars(select(DailyRollup.currency).distinct()):
        payments = business.payment_metrics(session, start_30, end_30, currency)
        refunds = business.refund_metrics(session, start_30, end_30, currency, payments=payments)
        ok, bad = ok + payments.succeeded, bad + payments.failed
        refunded_30 += refunds.amount
    board.success_rate_30d = round(100 * ok / (ok + bad), 1) if ok + bad else None
    board.refunds_30d = round(refunded_30 / 100, 2)
    board.open_disputes = int(
        session.scalar(
            select(func.count())
            .select_from(Dispute)
            .where(Dispute.status.in_(("needs_response", "warning_needs_response", "under_review")))
        )
        or 0
    )
    # The events needing attention, counted by index (processed ones are on /metrics).
    board.events_by_status = {
        status: int(session.scalar(select(func.count()).where(StripeEvent.status == status)) or 0)
        for status in ("pending", "failed")
    }
    return board
