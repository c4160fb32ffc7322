"""Incremental analytics: rows the metrics read instead of whole mirror tables.

Every row here is derived from the mirror and the webhook inbox, and is
recomputed (never incremented) for the keys a transaction touched, in that
transaction (``paydesk.analytics.rollups``); ``paydesk analytics rebuild``
recomputes them all. Days are Unix seconds of a UTC midnight. The one exception
is ``mrr_months``: a month sums every customer's movement, so a customer's
recompute adds the exact difference between its new and its old movements
(see ``MrrMonth``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paydesk.db.models.base import Base


class DailyRollup(Base):
    """Payments, refunds, disputes and new subscriptions of one UTC day and currency.

    Payments, refunds (succeeded), opened disputes and new subscriptions are
    counted on the day of their Stripe creation; resolved disputes on the day of
    their ``closed_at``.
    """

    __tablename__ = "analytics_daily"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    payments_created: Mapped[int] = mapped_column(BigInteger, default=0)
    payments_succeeded: Mapped[int] = mapped_column(BigInteger, default=0)
    payments_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    payments_volume: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_created: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_succeeded: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    disputes_opened: Mapped[int] = mapped_column(BigInteger, default=0)
    disputes_resolved: Mapped[int] = mapped_column(BigInteger, default=0)
    disputes_resolution_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    subscriptions_new: Mapped[int] = mapped_column(BigInteger, default=0)


class MrrSegment(Base):
    """A customer's MRR in one currency over ``[valid_from, valid_to)`` (Unix seconds).

    Only positive amounts are stored; a customer's segments do not overlap. The
    amount is the exact fraction ``amount_num / amount_den`` minor units a month.
    "MRR at t" (docs/METRICS.md) counts the segments with ``valid_from <= t < valid_to``.
    """

    __tablename__ = "mrr_segments"
    __table_args__ = (
        Index("ix_mrr_segments_currency_valid_from", "currency", "valid_from"),
        Index("ix_mrr_segments_currency_valid_to", "currency", "valid_to"),
    )

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    valid_from: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    valid_to: Mapped[int | None] = mapped_column(BigInteger)
    amount_num: Mapped[int] = mapped_column(BigInteger)
    amount_den: Mapped[int] = mapped_column(BigInteger)


class MrrCustomer(Base):
    """When a customer first had a positive amount (``paid_from``): reactivation vs new."""

    __tablename__ = "mrr_customers"
    # The first payers of a window: new (vs reactivated) MRR.
    __table_args__ = (Index("ix_mrr_customers_currency_paid_from", "currency", "paid_from"),)

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    paid_from: Mapped[int] = mapped_column(BigInteger)


class MrrDaily(Base):
    """Segments starting and ending on one UTC day, per currency and amount denominator.

    MRR at t is the sum over the days before t's of ``started_num - ended_num``
    (per denominator), plus the segments starting or ending on t's day up to t.
    """

    __tablename__ = "mrr_daily"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    amount_den: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started: Mapped[int] = mapped_column(BigInteger, default=0)
    ended: Mapped[int] = mapped_column(BigInteger, default=0)
    started_num: Mapped[int] = mapped_column(BigInteger, default=0)
    ended_num: Mapped[int] = mapped_column(BigInteger, default=0)


class MrrMonth(Base):
    """MRR movements of one calendar month (UTC), per currency, category and denominator.

    The month ``[month, next month)`` moves each customer's MRR from its value at
    ``month`` to its value at the next month's start (docs/METRICS.md); a row sums the
    customers of one ``category`` (``new``, ``reactivation``, ``expansion``,
    ``contraction``, ``churn``) whose amount has denominator ``amount_den``:
    ``amount_num / amount_den`` minor units a month, ``customers`` of them. The
    month's figure is the sum over denominators. A customer's recompute adds its
    new movements and subtracts its old ones (read from its old segments in the
    same transaction, under the customer's lock), so a replay adds zero; rows may
    therefore hold zero or, per denominator, negative parts of a positive sum.
    """

    __tablename__ = "mrr_months"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    month: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount_den: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    amount_num: Mapped[int] = mapped_column(BigInteger, default=0)
    customers: Mapped[int] = mapped_column(BigInteger, default=0)


class SubscriptionDaily(Base):
    """Subscriptions by tier (``other`` when none), current status and UTC day of creation.

    ``canceled`` counts those canceled (at once or at period end) or ended. The
    Prometheus counts by tier and status are sums of these rows.
    """

    __tablename__ = "subscription_daily"

    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscriptions: Mapped[int] = mapped_column(BigInteger, default=0)
    canceled: Mapped[int] = mapped_column(BigInteger, default=0)


class MetricsSnapshot(Base):
    """Figures too costly to read on every scrape, computed once per period per deployment.

    The API pod whose scrape finds the row older than the period claims it (an
    UPDATE that only one pod wins), recomputes ``body`` (JSON) and stores it; the
    others serve the stored one meanwhile.
    """

    __tablename__ = "metrics_snapshots"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    computed_at: Mapped[float] = mapped_column(Float)
    body: Mapped[str] = mapped_column(Text)
