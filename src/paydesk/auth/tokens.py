"""Admin API tokens: shown once, stored as a keyed digest, role-scoped, expiring, revocable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.auth import audit, roles
from paydesk.auth.accounts import Principal
from paydesk.auth.keys import keyed_digest, random_token
from paydesk.db.models import AdminApiToken, AdminUser
from paydesk.db.models.base import utcnow
from paydesk.errors import AuthenticationRequired, InvalidInput, NotFound, PermissionDenied
from paydesk.settings import Settings

PREFIX = "pdk_"
MAX_DAYS = 365
DEFAULT_DAYS = 90


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def create(
    session: Session,
    settings: Settings,
    user: AdminUser,
    *,
    name: str,
    role: str,
    days: int = DEFAULT_DAYS,
    actor: str,
    source_address: str | None = None,
) -> tuple[AdminApiToken, str]:
    """A new token for ``user``; returns the row and the token (shown once, never again)."""
    if not roles.is_role(role):
        raise InvalidInput(f"Unknown role {role!r}.", field="role")
    if roles.rank(role) > roles.rank(user.role):
        raise PermissionDenied("A token cannot have more rights than its owner.", field="role")
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"Tokens last 1 to {MAX_DAYS} days.", field="days")
    name = name.strip()[:100]
    if not name:
        raise InvalidInput("Name the token (what uses it).", field="name")
    raw = PREFIX + random_token()
    row = AdminApiToken(
        user_id=user.id,
        name=name,
        prefix=raw[:12],
        digest=keyed_digest(settings, "api-token", raw),
        role=role,
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        settings,
        actor=actor,
        action="token.create",
        target=f"token:{row.id}",
        after={"owner": user.email, "name": name, "role": role, "days": days},
        source_address=source_address,
    )
    return row, raw


def authenticate(session: Session, settings: Settings, raw: str) -> Principal:
    """The admin behind bearer token ``raw``; ``AuthenticationRequired`` if not usable."""
    refused = AuthenticationRequired(
        "The Admin API token is unknown, expired, revoked or its owner is disabled.",
        code="invalid_token",
    )
    if not raw.startswith(PREFIX) or len(raw) > 100:
        raise refused
    row = session.scalars(
        select(AdminApiToken).where(
            AdminApiToken.digest == keyed_digest(settings, "api-token", raw)
        )
    ).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        raise refused
    user = session.get(AdminUser, row.user_id)
    if user is None or user.disabled_at is not None:
        raise refused
    if roles.require_two_factor(user.role) and not user.totp_enabled:
        raise refused
    row.last_used_at = now
    return Principal(
        user_id=user.id,
        email=user.email,
        role=roles.lesser_role(row.role, user.role),
        via="token",
        credential_id=row.id,
    )


def list_tokens(session: Session, user_id: int | None = None) -> list[AdminApiToken]:
    """Tokens, newest first (of one admin if ``user_id``)."""
    query = select(AdminApiToken).order_by(AdminApiToken.id.desc())
    if user_id is not None:
        query = query.where(AdminApiToken.user_id == user_id)
    return list(session.scalars(query))


def revoke(
    session: Session,
    settings: Settings,
    token_id: int,
    *,
    by: Principal,
    may_manage_others: bool,
    source_address: str | None = None,
) -> AdminApiToken:
    """Revoke a token (its owner's, or anyone's for admins)."""
    row = session.get(AdminApiToken, token_id)
    if row is None or (row.user_id != by.user_id and not may_manage_others):
        raise NotFound(f"No token {token_id}.", code="token_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session,
            settings,
            actor=by.actor,
            action="token.revoke",
            target=f"token:{row.id}",
            before={"revoked": False},
            after={"revoked": True},
            source_address=source_address,
        )
    return row
