"""Server-side console sessions with idle and absolute timeouts, and CSRF tokens.

The cookie carries a random id; the database keeps only its keyed digest, the
stage of sign-in, when it was last used and when it ends regardless of use.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.auth import roles
from paydesk.auth.accounts import Principal
from paydesk.auth.keys import keyed_digest, random_token
from paydesk.db.models import AdminSession, AdminUser
from paydesk.db.models.base import utcnow
from paydesk.settings import Settings

COOKIE = "paydesk_admin_session"
CSRF_COOKIE = "paydesk_csrf"
# Half-signed-in sessions (password checked, code pending) last this long at most.
PENDING_LIFETIME = timedelta(minutes=10)
STAGES = ("password", "enrol", "full")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class LoadedSession:
    """A live session and its admin."""

    row: AdminSession
    user: AdminUser

    def principal(self) -> Principal:
        """The admin acting through this session."""
        return Principal(
            user_id=self.user.id,
            email=self.user.email,
            role=roles.as_role(self.user.role),
            via="session",
            credential_id=self.row.id,
        )


def start(
    session: Session,
    settings: Settings,
    user: AdminUser,
    *,
    stage: str,
    source_address: str | None,
    user_agent: str | None,
) -> str:
    """Open a session for ``user`` at ``stage``; returns the cookie value."""
    raw = random_token()
    now = utcnow()
    lifetime = (
        timedelta(hours=settings.admin_session_max_hours) if stage == "full" else PENDING_LIFETIME
    )
    session.add(
        AdminSession(
            digest=keyed_digest(settings, "session", raw),
            user_id=user.id,
            stage=stage,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            source_address=source_address[:64] if source_address else None,
            user_agent=user_agent[:255] if user_agent else None,
        )
    )
    session.flush()
    return raw


def load(
    session: Session, settings: Settings, raw: str | None, *, now: datetime | None = None
) -> LoadedSession | None:
    """The live session of cookie value ``raw``; None if unknown, ended or idle too long.

    A live session's idle clock restarts (``last_seen_at``).
    """
    if not raw or len(raw) > 100:
        return None
    row = session.scalars(
        select(AdminSession).where(AdminSession.digest == keyed_digest(settings, "session", raw))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    now = now or utcnow()
    idle = timedelta(minutes=settings.admin_session_idle_minutes)
    if _aware(row.expires_at) <= now or _aware(row.last_seen_at) + idle <= now:
        row.revoked_at = now
        return None
    user = session.get(AdminUser, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    row.last_seen_at = now
    return LoadedSession(row, user)


def promote(session: Session, settings: Settings, loaded: LoadedSession, *, stage: str) -> str:
    """End the pending session and open a new one at ``stage`` (a fresh id on sign-in)."""
    loaded.row.revoked_at = utcnow()
    return start(
        session,
        settings,
        loaded.user,
        stage=stage,
        source_address=loaded.row.source_address,
        user_agent=loaded.row.user_agent,
    )


def end(loaded: LoadedSession) -> None:
    """Sign out."""
    loaded.row.revoked_at = utcnow()


def new_csrf_cookie() -> str:
    """A fresh random value for the CSRF cookie."""
    return random_token(24)


def csrf_token(settings: Settings, cookie_value: str, session_value: str | None = None) -> str:
    """The form token that matches the browser's CSRF cookie (double submit, signed)
    and, once signed in, its session (``session_value``, the session cookie).

    Bound to the session, a token taken from another session (the attacker's own,
    with their CSRF cookie planted in the victim's browser) is refused. The sign-in
    steps' forms are bound to no session (``None``): they come before one exists.

    Empty without ``PAYDESK_SECRET_KEY``: every page, the error page that reports
    the missing key included, still renders, and no form can then pass ``csrf_ok``.
    """
    if settings.secret_key is None:
        return ""
    return keyed_digest(settings, "csrf", f"{cookie_value}|{session_value or ''}")


def csrf_ok(
    settings: Settings,
    cookie_value: str | None,
    submitted: str | None,
    session_value: str | None = None,
) -> bool:
    """Whether a submitted form token matches the CSRF cookie and the session."""
    if not cookie_value or not submitted or settings.secret_key is None:
        return False
    expected = csrf_token(settings, cookie_value, session_value)
    return hmac.compare_digest(expected, submitted)
