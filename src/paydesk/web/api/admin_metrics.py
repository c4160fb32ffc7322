"""Admin API: business metrics (formulas in docs/METRICS.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from paydesk.analytics.business import MrrMovements, mrr_series, overview, round_minor, unix
from paydesk.auth.roles import Permission
from paydesk.errors import InvalidInput
from paydesk.web.api.admin_auth import require
from paydesk.web.api.deps import SessionDep
from paydesk.web.api.pagination import Timestamp
from paydesk.web.api.schemas import error_responses

router = APIRouter(
    prefix="/api/admin", tags=["admin: metrics"], dependencies=[require(Permission.READ)]
)

CurrencyQuery = Annotated[str, Query(pattern=r"^[A-Za-z]{3}$", description="ISO currency")]
DEFAULT_WINDOW = timedelta(days=30)
MAX_MONTHS = 36
_ERRORS = error_responses(401, 403, 422)

Ratio = Annotated[
    float | None,
    Field(
        description="A fraction between 0 and 1 (refund and dispute rates may exceed 1); "
        "null when its denominator is zero"
    ),
]


def _ratio(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _minor(value: Fraction | None) -> int | None:
    return None if value is None else round_minor(value)


class PaymentFigures(BaseModel):
    """Payments created in the window."""

    succeeded: int
    failed: int
    attempts: int
    success_rate: Ratio
    failure_rate: Ratio
    volume: int = Field(description="Sum received by succeeded payments, minor units")
    average_value: int | None = Field(description="volume / succeeded, minor units")


class RefundFigures(BaseModel):
    """Succeeded refunds created in the window."""

    count: int
    amount: int = Field(description="Minor units")
    refund_rate: Ratio


class DisputeFigures(BaseModel):
    """Disputes opened in the window and those resolved in it."""

    opened: int
    dispute_rate: Ratio
    resolved: int
    mean_resolution_seconds: float | None


class MrrFigures(BaseModel):
    """MRR (minor units per month, free tier excluded) at both ends and its movements."""

    start: datetime
    end: datetime
    mrr_start: int
    mrr_end: int
    new: int
    reactivation: int
    expansion: int
    contraction: int
    churn: int
    net_change: int = Field(description="mrr_end − mrr_start, exact before rounding")
    customers_start: int
    customers_end: int
    churned_customers: int
    subscriber_churn_rate: Ratio
    revenue_churn_rate: Ratio

    @classmethod
    def of(cls, moves: MrrMovements) -> MrrFigures:
        """The API view of exact movements (each figure rounded half up)."""
        return cls(
            start=datetime.fromtimestamp(moves.start, UTC),
            end=datetime.fromtimestamp(moves.end, UTC),
            mrr_start=round_minor(moves.mrr_start),
            mrr_end=round_minor(moves.mrr_end),
            new=round_minor(moves.new),
            reactivation=round_minor(moves.reactivation),
            expansion=round_minor(moves.expansion),
            contraction=round_minor(moves.contraction),
            churn=round_minor(moves.churn),
            net_change=round_minor(moves.mrr_end - moves.mrr_start),
            customers_start=moves.customers_start,
            customers_end=moves.customers_end,
            churned_customers=moves.churned_customers,
            subscriber_churn_rate=_ratio(moves.subscriber_churn_rate),
            revenue_churn_rate=_ratio(moves.revenue_churn_rate),
        )


class MetricsOut(BaseModel):
    """Every business metric of a window ``[start, end)`` in one currency."""

    start: datetime
    end: datetime
    currency: str
    payments: PaymentFigures
    refunds: RefundFigures
    disputes: DisputeFigures
    mrr: MrrFigures
    new_subscriptions: int


class MrrSeriesOut(BaseModel):
    """MRR movements month by month (calendar months, UTC; the last one so far)."""

    currency: str
    months: list[MrrFigures]


@router.get(
    "/metrics", summary="Business metrics of a window", responses=error_responses(401, 403, 422)
)
def get_metrics(
    session: SessionDep,
    start: Annotated[
        Timestamp | None, Query(description="Window start (default end − 30 days)")
    ] = None,
    end: Annotated[
        Timestamp | None, Query(description="Window end, excluded (default: now, included)")
    ] = None,
    currency: CurrencyQuery = "usd",
) -> MetricsOut:
    """Payments, refunds, disputes, MRR movements and new subscriptions of ``[start, end)``."""
    end_at = end or datetime.now(UTC)
    start_at = start or end_at - DEFAULT_WINDOW
    # Without an end, "up to now" includes the current second (windows are whole seconds).
    a, b = unix(start_at), unix(end_at) + (0 if end else 1)
    if a >= b:
        raise InvalidInput("start must be before end.", field="start")
    result = overview(session, a, b, currency)
    pay = result.payments
    return MetricsOut(
        start=datetime.fromtimestamp(a, UTC),
        end=datetime.fromtimestamp(b, UTC),
        currency=result.currency,
        payments=PaymentFigures(
            succeeded=pay.succeeded,
            failed=pay.failed,
            attempts=pay.attempts,
            success_rate=_ratio(pay.success_rate),
            failure_rate=_ratio(pay.failure_rate),
            volume=pay.volume,
            average_value=_minor(pay.average_value),
        ),
        refunds=RefundFigures(
            count=result.refunds.count,
            amount=result.refunds.amount,
            refund_rate=_ratio(result.refunds.refund_rate),
        ),
        disputes=DisputeFigures(
            opened=result.disputes.opened,
            dispute_rate=_ratio(result.disputes.dispute_rate),
            resolved=result.disputes.resolved,
            mean_resolution_seconds=_ratio(result.disputes.mean_resolution_seconds),
        ),
        mrr=MrrFigures.of(result.mrr),
        new_subscriptions=result.new_subscriptions,
    )


@router.get(
    "/metrics/mrr", summary="MRR movements by month", responses=error_responses(401, 403, 422)
)
def get_mrr_series(
    session: SessionDep,
    months: Annotated[int, Query(ge=1, le=MAX_MONTHS, description="How many months")] = 6,
    currency: CurrencyQuery = "usd",
) -> MrrSeriesOut:
    """The last ``months`` calendar months, oldest first, the current one up to now."""
    series = mrr_series(session, datetime.now(UTC), months, currency)
    return MrrSeriesOut(currency=currency.lower(), months=[MrrFigures.of(m) for m in series])
