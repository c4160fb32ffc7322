"""Customer portal: single-use links, the sessions they open, and the email outbox.

A link's token and a session's cookie value are 256-bit random strings; only their
keyed digests are stored. A session is scoped to one Stripe customer; a pay link
additionally to one payment or invoice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paydesk.db.models.base import Base, utcnow

_ID = BigInteger().with_variant(Integer, "sqlite")


class PortalSession(Base):
    """A portal link (``link_digest``) and, once opened, its session (``session_digest``).

    ``purpose``: ``portal`` (the whole portal) or ``pay`` (one ``target``: a payment
    or an invoice id). ``link_expires_at`` bounds when the link may be opened (once);
    ``expires_at`` bounds the session it opens, ``last_seen_at`` its idle time.
    """

    __tablename__ = "portal_sessions"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    link_digest: Mapped[str] = mapped_column(String(64), unique=True)
    session_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(255))
    return_url: Mapped[str | None] = mapped_column(String(2000))
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    link_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailOutbox(Base):
    """An email to send (recorded in the webhook worker's transaction, sent after).

    ``dedupe_key`` makes one email per business fact (an invoice's failed attempt),
    however often its event is delivered or replayed. ``body_*`` hold the rendered
    message; the link inside is a pay link whose token exists nowhere else.
    """

    __tablename__ = "email_outbox"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
