"""Customer portal links and the sessions they open.

``create_link`` makes a single-use link: its token is returned once and only its
keyed digest is stored. ``open_link`` consumes it (once, before it expires) and
starts a customer session whose cookie value is another fresh token. Sessions end
after ``PAYDESK_PORTAL_IDLE_MINUTES`` without use and ``PAYDESK_PORTAL_SESSION_MAX_MINUTES``
after opening. Nothing here commits: the request owns the unit of work.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paydesk.auth.keys import keyed_digest, random_token
from paydesk.db.models import PortalSession
from paydesk.db.models.base import utcnow
from paydesk.errors import InvalidInput
from paydesk.settings import Settings

COOKIE = "paydesk_portal"
CSRF_PURPOSE = "portal-csrf"
PURPOSES = ("portal", "pay")
MAX_TOKEN_LENGTH = 100
MAX_RETURN_URL = 2000


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class CreatedLink:
    """A new link: its token (shown once) and when it stops opening."""

    token: str
    expires_at: datetime
    row: PortalSession


def check_return_url(settings: Settings, return_url: str | None) -> str | None:
    """``return_url`` if its origin is allowed (PAYDESK_PORTAL_RETURN_URLS), else 422."""
    if return_url is None:
        return None
    refused = InvalidInput(
        "return_url is not on the allow-list (PAYDESK_PORTAL_RETURN_URLS).",
        code="return_url_not_allowed",
        field="return_url",
    )
    if len(return_url) > MAX_RETURN_URL or any(ch.isspace() for ch in return_url):
        raise refused
    try:
        parts = urlsplit(return_url)
        port = parts.port
    except ValueError as exc:
        raise refused from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise refused
    origin = f"{parts.scheme}://{parts.hostname.lower()}" + (f":{port}" if port else "")
    if origin not in settings.portal_return_urls:
        raise refused
    return return_url


def create_link(
    session: Session,
    settings: Settings,
    *,
    customer_id: str,
    purpose: str = "portal",
    target: str | None = None,
    return_url: str | None = None,
    created_by: str | None = None,
    lifetime: timedelta | None = None,
) -> CreatedLink:
    """Store a single-use link for ``customer_id``; returns its token once."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    raw = random_token()
    now = utcnow()
    expires = now + (lifetime or timedelta(minutes=settings.portal_link_minutes))
    row = PortalSession(
        link_digest=keyed_digest(settings, "portal-link", raw),
        customer_id=customer_id,
        purpose=purpose,
        target=target,
        return_url=return_url,
        created_by=created_by,
        created_at=now,
        link_expires_at=expires,
    )
    session.add(row)
    session.flush()
    return CreatedLink(raw, expires, row)


def pay_link(
    session: Session,
    settings: Settings,
    *,
    customer_id: str,
    target: str,
    created_by: str,
) -> CreatedLink:
    """A single-use link (valid PAYDESK_PAY_LINK_HOURS) to pay ``target`` and nothing else.

    ``target`` is an open invoice (``in_…``) or an unfinished payment (``pi_…``) of
    ``customer_id``; the caller checks that. The URL is ``link_url(base, link)``.
    """
    return create_link(
        session,
        settings,
        customer_id=customer_id,
        purpose="pay",
        target=target,
        created_by=created_by[:255],
        lifetime=timedelta(hours=settings.pay_link_hours),
    )


def link_url(base_url: str, link: CreatedLink) -> str:
    """The address a customer opens: ``<base>/portal/session/<token>``."""
    return f"{base_url.rstrip('/')}/portal/session/{link.token}"


def open_link(
    session: Session, settings: Settings, raw: str, *, now: datetime | None = None
) -> tuple[PortalSession, str] | None:
    """Consume link ``raw`` and start its session; returns the row and the cookie value.

    None when the link is unknown, used, revoked or expired. Two concurrent opens of
    one link cannot both succeed: the consuming UPDATE matches only an unopened row.
    """
    if not raw or len(raw) > MAX_TOKEN_LENGTH or not raw.isascii():
        return None
    now = now or utcnow()
    digest = keyed_digest(settings, "portal-link", raw)
    row = session.scalars(select(PortalSession).where(PortalSession.link_digest == digest)).first()
    if row is None or row.opened_at is not None or row.revoked_at is not None:
        return None
    if _aware(row.link_expires_at) <= now:
        return None
    cookie = random_token()
    claimed = session.execute(
        update(PortalSession)
        .where(PortalSession.id == row.id, PortalSession.opened_at.is_(None))
        .values(
            opened_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(minutes=settings.portal_session_max_minutes),
            session_digest=keyed_digest(settings, "portal-session", cookie),
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    session.refresh(row)
    return row, cookie


def load(
    session: Session, settings: Settings, cookie: str | None, *, now: datetime | None = None
) -> PortalSession | None:
    """The live session of cookie value ``cookie``; restarts its idle clock."""
    if not cookie or len(cookie) > MAX_TOKEN_LENGTH or not cookie.isascii():
        return None
    digest = keyed_digest(settings, "portal-session", cookie)
    row = session.scalars(
        select(PortalSession).where(PortalSession.session_digest == digest)
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at is None:
        return None
    now = now or utcnow()
    idle = timedelta(minutes=settings.portal_idle_minutes)
    last = _aware(row.last_seen_at or row.opened_at or now)
    if _aware(row.expires_at) <= now or last + idle <= now:
        row.revoked_at = now
        return None
    row.last_seen_at = now
    return row


def end(row: PortalSession) -> None:
    """Sign the customer out of the portal."""
    row.revoked_at = utcnow()


def csrf_token(settings: Settings, row: PortalSession) -> str:
    """The CSRF token of this session's forms (bound to the session, not guessable)."""
    return keyed_digest(settings, CSRF_PURPOSE, f"{row.id}:{row.session_digest}")


def csrf_ok(expected: str, submitted: str | None) -> bool:
    """Whether a submitted form token is the session's (``csrf_token``'s value)."""
    if not submitted or len(submitted) > MAX_TOKEN_LENGTH or not submitted.isascii():
        return False
    return hmac.compare_digest(expected, submitted)
