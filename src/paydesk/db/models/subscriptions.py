"""Subscriptions and their invoices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from paydesk.db.models.base import Base, StripeMirrorMixin


class Subscription(StripeMirrorMixin, Base):
    """A subscription to one tier price; periods come from its (single) item."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        Index("ix_subscriptions_currency_stripe_created", "currency", "stripe_created"),
        Index("ix_subscriptions_tier_status_stripe_created", "tier", "status", "stripe_created"),
        # The Admin API's and console's filters, newest first.
        Index("ix_subscriptions_tier_stripe_created", "tier", "stripe_created"),
        Index("ix_subscriptions_status_stripe_created", "status", "stripe_created"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    item_id: Mapped[str | None] = mapped_column(String(255))
    price_id: Mapped[str | None] = mapped_column(String(255), index=True)
    tier: Mapped[str | None] = mapped_column(String(32), index=True)
    unit_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    interval: Mapped[str] = mapped_column(String(16), default="month")
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    current_period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    latest_invoice_id: Mapped[str | None] = mapped_column(String(255))
    default_payment_method_id: Mapped[str | None] = mapped_column(String(255))


class Invoice(StripeMirrorMixin, Base):
    """An invoice (first, cycle, proration); linked to its subscription and payment."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(32), index=True)
    billing_reason: Mapped[str | None] = mapped_column(String(64))
    amount_due: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
