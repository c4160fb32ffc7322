"""Declarative base with a naming convention, so migrations name constraints stably."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware current time in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Base of every Paydesk table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    """``created_at`` / ``updated_at`` kept by the application, in UTC."""

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class StripeMirrorMixin(TimestampMixin):
    """Columns every mirrored Stripe object has.

    ``source_time`` is the Unix time of the freshest information applied to the row:
    an event's ``created`` when a webhook wrote it, the fetch time when an API
    response did. A webhook older than ``source_time`` must not overwrite the row
    (the worker re-fetches the object instead), which makes any delivery order
    converge on the same mirror.
    """

    stripe_id: Mapped[str] = mapped_column(String(255), unique=True)
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    stripe_created: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    source_time: Mapped[int] = mapped_column(BigInteger, default=0)
