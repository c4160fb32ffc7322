"""Admin API: webhook events (list, replay, refused deliveries), the audit log, API
tokens and admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from paydesk.admin_actions import operations as operations_actions
from paydesk.auth import accounts, audit, roles, tokens
from paydesk.auth.roles import Permission
from paydesk.errors import Conflict, PermissionDenied
from paydesk.web.api.admin_auth import (
    AuditFailures,
    ContextDep,
    PrincipalDep,
    require,
    require_action,
    source_address,
)
from paydesk.web.api.deps import SessionDep, SettingsDep
from paydesk.web.api.schemas import error_responses
from paydesk.webhooks import operations

router = APIRouter(
    prefix="/api/admin",
    tags=["admin: access, audit, events"],
    dependencies=[AuditFailures, require(Permission.READ)],
)


class EventOut(BaseModel):
    """A stored webhook event and what the worker made of it."""

    id: str
    type: str
    status: str
    attempts: int
    last_error: str | None
    created: int


class AttemptOut(BaseModel):
    """A failed processing attempt of an event (the error redacted and cut)."""

    attempt: int = Field(description="The event's attempt count then (a replay restarts it)")
    at: datetime
    worker: str | None
    error_type: str
    error_message: str
    outcome: str = Field(description="failed (retried later) or parked (attempt limit)")


class EventDetailOut(EventOut):
    """A stored webhook event with its outcome and its failed attempts."""

    outcome: str | None
    received_at: datetime
    first_attempt_at: datetime | None
    processed_at: datetime | None
    failed_attempts: list[AttemptOut] = Field(
        description="The newest failed attempts (at most 20), oldest first; "
        "a success is the event's own status and outcome"
    )


class AuditOut(BaseModel):
    """One audit log entry."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    before: str | None
    after: str | None
    source_address: str | None


class TokenCreate(BaseModel):
    """A new API token for the caller."""

    name: str = Field(min_length=1, max_length=100)
    role: roles.Role
    days: int = Field(default=tokens.DEFAULT_DAYS, ge=1, le=tokens.MAX_DAYS)


class TokenOut(BaseModel):
    """An API token's metadata (never the token itself)."""

    id: int
    name: str
    prefix: str
    role: str
    expires_at: datetime
    revoked: bool


class TokenCreated(TokenOut):
    """A created token: ``token`` is shown this once and never again."""

    token: str


class AdminOut(BaseModel):
    """An admin account."""

    id: int
    email: str
    role: str
    totp_enabled: bool
    disabled: bool


def _token_out(row: object) -> dict[str, object]:
    return {
        "id": row.id,  # type: ignore[attr-defined]
        "name": row.name,  # type: ignore[attr-defined]
        "prefix": row.prefix,  # type: ignore[attr-defined]
        "role": row.role,  # type: ignore[attr-defined]
        "expires_at": row.expires_at,  # type: ignore[attr-defined]
        "revoked": row.revoked_at is not None,  # type: ignore[attr-defined]
    }


@router.get("/events", summary="Stored webhook events")
def list_events(
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[EventOut]:
    """The newest stored Stripe events, optionally of one status."""
    return [
        EventOut(
            id=row.event_id,
            type=row.type,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            created=row.created,
        )
        for row in operations.list_events(session, status=status, limit=limit)
    ]


@router.get(
    "/events/{event_id}",
    summary="One stored event and its failed attempts",
    responses=error_responses(404, 422),
)
def retrieve_event(event_id: str, session: SessionDep) -> EventDetailOut:
    """A stored Stripe event by id: status, outcome and the history of its failed
    processing attempts (never the payload)."""
    row = operations.get_event(session, event_id)
    return EventDetailOut(
        id=row.event_id,
        type=row.type,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created=row.created,
        outcome=row.outcome,
        received_at=row.received_at,
        first_attempt_at=row.first_attempt_at,
        processed_at=row.processed_at,
        failed_attempts=[
            AttemptOut(
                attempt=a.attempt,
                at=a.at,
                worker=a.worker,
                error_type=a.error_type,
                error_message=a.error_message,
                outcome=a.outcome,
            )
            for a in operations.failed_attempts(session, row)
        ],
    )


@router.post(
    "/events/{event_id}/replay",
    summary="Replay a stored event",
    dependencies=[require_action(operations_actions.REPLAY_EVENT)],
)
def replay_event(event_id: str, ctx: ContextDep) -> EventOut:
    """Make the event due again; the worker applies it on its next pass."""
    row = operations_actions.replay_event(ctx, event_id)
    return EventOut(
        id=row.event_id,
        type=row.type,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created=row.created,
    )


class RejectionOut(BaseModel):
    """Refused webhook deliveries of one reason from one source address in one hour."""

    hour: datetime = Field(description="Start of the hour (UTC)")
    reason: str = Field(description="signature_invalid, signature_expired, not_an_event, …")
    source_address: str | None = Field(
        description="The real client (behind PAYDESK_TRUSTED_PROXIES); "
        "'(other addresses)' past 200 addresses per reason and hour"
    )
    count: int
    last_at: datetime = Field(description="The latest refusal counted")
    largest_body_bytes: int


@router.get(
    "/webhooks/rejections",
    summary="Refused webhook deliveries per hour",
    dependencies=[require(Permission.SETTINGS_READ)],
    responses=error_responses(401, 403, 422),
)
def list_rejections(
    session: SessionDep,
    hours: Annotated[
        int,
        Query(ge=1, le=operations.MAX_REJECTION_HOURS, description="How many hours back"),
    ] = 24,
) -> list[RejectionOut]:
    """Deliveries refused before storage (bad signature, not an event, too large, other
    mode), per hour, reason and source address: newest hour first, then the most
    frequent; at most 500 rows. Never the payload."""
    return [
        RejectionOut(
            hour=c.hour,
            reason=c.reason,
            source_address=c.source_address,
            count=c.count,
            last_at=c.last_at,
            largest_body_bytes=c.largest_body_bytes,
        )
        for c in operations.rejection_counts(session, hours=hours)
    ]


@router.get(
    "/audit",
    summary="The audit log",
    dependencies=[require(Permission.AUDIT_READ)],
    response_model=None,
    responses={
        200: {
            "description": "The entries (JSON), or with ``format=csv`` a CSV file",
            "model": list[AuditOut],
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def list_audit(
    session: SessionDep,
    actor: Annotated[str | None, Query(max_length=320)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=255)] = None,
    outcome: Annotated[
        str | None,
        Query(pattern="^(success|failure)$", description="Only successes or only failures"),
    ] = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> list[AuditOut] | PlainTextResponse:
    """Entries newest first; ``format=csv`` exports every matching entry.

    ``outcome`` is ``success`` or ``failure``: a refused or failed mutation is an
    entry of its own whose ``after`` holds the error code (``{"error": …}``).
    """
    filters = audit.AuditFilter(actor=actor, action=action, target=target, outcome=outcome)
    if format == "csv":
        return PlainTextResponse(
            audit.to_csv(audit.iter_all(session, filters)),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="paydesk-audit.csv"'},
        )
    rows = audit.query(session, filters, before_id=before_id, limit=limit)
    return [AuditOut.model_validate(row, from_attributes=True) for row in rows]


@router.get("/tokens", summary="Your API tokens", dependencies=[require(Permission.TOKENS_OWN)])
def list_tokens(session: SessionDep, principal: PrincipalDep) -> list[TokenOut]:
    """The caller's tokens (metadata only)."""
    return [
        TokenOut.model_validate(_token_out(row))
        for row in tokens.list_tokens(session, principal.user_id)
    ]


@router.post(
    "/tokens",
    summary="Create an API token",
    status_code=201,
    dependencies=[require(Permission.TOKENS_OWN, audit_as="token.create")],
)
def create_token(
    body: TokenCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    request: Request,
) -> TokenCreated:
    """A token for the caller, at most the caller's role; the token is shown once."""
    user = accounts.get_admin(session, principal.user_id)
    if roles.rank(body.role) > roles.rank(principal.role):
        # Bounded by the caller's current role: a narrow token cannot mint a wider one.
        raise PermissionDenied("A token cannot have more rights than its creator.", field="role")
    row, raw = tokens.create(
        session,
        settings,
        user,
        name=body.name,
        role=body.role,
        days=body.days,
        actor=principal.actor,
        source_address=source_address(request),
    )
    return TokenCreated.model_validate({**_token_out(row), "token": raw})


@router.delete(
    "/tokens/{token_id}",
    summary="Revoke an API token",
    dependencies=[
        require(Permission.TOKENS_OWN, audit_as="token.revoke", target="token:{token_id}")
    ],
)
def revoke_token(
    token_id: int,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    request: Request,
) -> TokenOut:
    """Revoke one of your tokens (admins: anyone's)."""
    live = settings.key_mode == "live"
    row = tokens.revoke(
        session,
        settings,
        token_id,
        by=principal,
        may_manage_others=roles.can(principal.role, Permission.ADMINS_MANAGE, live=live),
        source_address=source_address(request),
    )
    return TokenOut.model_validate(_token_out(row))


@router.get("/admins", summary="Admin accounts", dependencies=[require(Permission.ADMINS_MANAGE)])
def list_admins(session: SessionDep) -> list[AdminOut]:
    """Every admin account."""
    from sqlalchemy import select

    from paydesk.db.models import AdminUser

    return [
        AdminOut(
            id=user.id,
            email=user.email,
            role=user.role,
            totp_enabled=user.totp_enabled,
            disabled=user.disabled_at is not None,
        )
        for user in session.scalars(select(AdminUser).order_by(AdminUser.email))
    ]


@router.post(
    "/admins/{admin_id}/disable",
    summary="Disable an admin",
    dependencies=[
        require(Permission.ADMINS_MANAGE, audit_as="admin.disable", target="admin:{admin_id}")
    ],
    responses=error_responses(409),
)
def disable_admin(
    admin_id: int,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    request: Request,
) -> AdminOut:
    """Refuse the admin's sign-in and revoke their sessions and tokens at once.

    Not one's own account: that would revoke the very credential of the call and could
    leave no admin able to sign in (409 ``cannot_disable_self``).
    """
    if admin_id == principal.user_id:
        raise Conflict("You cannot disable your own account.", code="cannot_disable_self")
    user = accounts.get_admin(session, admin_id)
    accounts.disable_admin(
        session, settings, user, actor=principal.actor, source_address=source_address(request)
    )
    return AdminOut(
        id=user.id,
        email=user.email,
        role=user.role,
        totp_enabled=user.totp_enabled,
        disabled=True,
    )
