"""Payments (PaymentIntents with their latest charge), refunds and disputes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paydesk.db.models.base import Base, StripeMirrorMixin


class Payment(StripeMirrorMixin, Base):
    """A PaymentIntent and what its latest charge says. Card data: brand, last4, expiry."""

    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_currency_stripe_created", "currency", "stripe_created"),
        # The Admin API's and console's filters, newest first.
        Index("ix_payments_status_stripe_created", "status", "stripe_created"),
        Index("ix_payments_customer_id_stripe_created", "customer_id", "stripe_created"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    amount_received: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    capture_method: Mapped[str] = mapped_column(String(16), default="automatic")
    description: Mapped[str | None] = mapped_column(String(1000))
    receipt_email: Mapped[str | None] = mapped_column(String(320))
    latest_charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_exp_month: Mapped[int | None] = mapped_column(Integer)
    card_exp_year: Mapped[int | None] = mapped_column(Integer)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(1000))
    invoice_id: Mapped[str | None] = mapped_column(String(255), index=True)
    disputed: Mapped[bool] = mapped_column(default=False)


class Refund(StripeMirrorMixin, Base):
    """A refund, with who asked for it and why (``note`` stays in Paydesk)."""

    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_currency_stripe_created", "currency", "stripe_created"),
        # The console's and Admin API's status filter, newest first.
        Index("ix_refunds_status_stripe_created", "status", "stripe_created"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(255))
    failure_reason: Mapped[str | None] = mapped_column(String(64))


class Dispute(StripeMirrorMixin, Base):
    """A dispute (chargeback or inquiry) and how it ended."""

    __tablename__ = "disputes"
    __table_args__ = (
        Index("ix_disputes_currency_stripe_created", "currency", "stripe_created"),
        Index("ix_disputes_currency_closed_at", "currency", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    evidence_due_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
