"""Customers: the link between an app user and their Stripe customer."""

from __future__ import annotations

from sqlalchemy import Boolean, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from paydesk.db.models.base import Base, StripeMirrorMixin


class Customer(StripeMirrorMixin, Base):
    """A Stripe customer; ``user_id`` is the app's user when Paydesk created it.

    Unique on both sides: one Stripe customer per app user.
    """

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    default_payment_method_id: Mapped[str | None] = mapped_column(String(255))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


# Admins search by email in any case (Stripe keeps the case it was given):
# lower(email) = lower(:q), served by this index.
Index("ix_customers_email_lower", func.lower(Customer.email))
