"""The webhook inbox: every Stripe event received once, and every delivery refused.

``stripe_events`` is written by the endpoint (one row per Stripe event id, the raw
payload kept verbatim) and worked off by ``paydesk worker``, which records the
outcome on the same row. ``webhook_rejections`` records deliveries that failed
verification — never their payload — so suspicious traffic can be counted and
alerted on. ``stripe_event_attempts`` keeps the failed processing attempts of an
event (its history; the success is the event row itself).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from paydesk.db.models.base import Base, utcnow

EVENT_STATUSES = ("pending", "processed", "failed", "ignored")


class StripeEvent(Base):
    """A Stripe event as received, and what the worker made of it.

    ``status``: ``pending`` (stored and not yet applied; after a failed attempt it
    keeps ``last_error`` and waits for ``next_attempt_at``), ``processed``,
    ``failed`` (parked after the attempt limit; ``paydesk events replay --failed``
    brings it back) or ``ignored`` (a type Paydesk does not handle; kept).

    ``lease_token`` is set by the worker claim that reserved the row (until
    ``next_attempt_at``) and cleared when that worker records the outcome; a
    worker writes a row only while it still carries that worker's token.
    """

    __tablename__ = "stripe_events"
    __table_args__ = (
        Index("ix_stripe_events_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_stripe_events_processed_at", "processed_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(128), index=True)
    api_version: Mapped[str | None] = mapped_column(String(64))
    created: Mapped[int] = mapped_column(BigInteger, index=True)
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payload: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="webhook")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processing_ms: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(255))
    lease_token: Mapped[str | None] = mapped_column(String(32))


# Failed attempts kept per event (newest), and the characters of an error kept:
# a poison event retried for ever keeps a bounded history.
MAX_ATTEMPTS_KEPT = 20
MAX_ATTEMPT_ERROR = 1000


class StripeEventAttempt(Base):
    """One failed processing attempt of a stored event (``webhooks.process.lease``).

    Written by the worker in the transaction that records the failure on the event
    row; only the newest ``MAX_ATTEMPTS_KEPT`` of an event are kept. ``attempt`` is
    the event's attempt count at that time (a replay starts counting again);
    ``outcome`` is ``failed`` (to be retried) or ``parked`` (the attempt limit was
    reached). ``error_message`` is the exception text, redacted and cut.
    """

    __tablename__ = "stripe_event_attempts"
    __table_args__ = (Index("ix_stripe_event_attempts_event_id", "stripe_event_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    stripe_event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("stripe_events.id", ondelete="CASCADE"),
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    worker: Mapped[str | None] = mapped_column(String(255))
    error_type: Mapped[str] = mapped_column(String(128))
    error_message: Mapped[str] = mapped_column(String(MAX_ATTEMPT_ERROR))
    outcome: Mapped[str] = mapped_column(String(16))


class WebhookRejection(Base):
    """Deliveries refused before storage: why, from where, when, how many (no payload).

    One row per (reason, source address, hour) since migration 0009: ``count``
    deliveries, the first at ``received_at`` and the latest at ``last_received_at``,
    ``body_bytes`` the largest body. A flood of refusals adds to a counter instead of
    a row each, so it cannot fill the disk (``webhooks.store.insert_rejection``).
    Rows written before 0009 have no ``hour`` and count 1.
    """

    __tablename__ = "webhook_rejections"
    __table_args__ = (Index("ix_webhook_rejections_hour_reason", "hour", "reason"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    reason: Mapped[str] = mapped_column(String(64), index=True)
    source_address: Mapped[str | None] = mapped_column(String(64))
    body_bytes: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(String(255))
    hour: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
