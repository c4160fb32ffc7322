"""Products and prices: the tiers as Stripe knows them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from paydesk.db.models.base import Base, StripeMirrorMixin


class Product(StripeMirrorMixin, Base):
    """A Stripe product (one per tier)."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(1000))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Price(StripeMirrorMixin, Base):
    """A Stripe price; ``tier`` is set when it is one of the configured tier prices."""

    __tablename__ = "prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[str] = mapped_column(String(255), index=True)
    unit_amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    recurring_interval: Mapped[str | None] = mapped_column(String(16))
    recurring_interval_count: Mapped[int | None] = mapped_column(Integer)
    lookup_key: Mapped[str | None] = mapped_column(String(255), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    tier: Mapped[str | None] = mapped_column(String(32), index=True)
