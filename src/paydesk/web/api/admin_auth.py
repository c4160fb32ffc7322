"""Authentication and authorisation of the Admin API: bearer tokens, the permission matrix.

Every route under ``/api/admin`` depends on ``require(permission)``: the caller's
token is checked (``paydesk.auth.tokens``) and its role is held against the one
matrix in ``paydesk.auth.roles`` that the console uses too.

Failed mutations are audited here too, for the Admin API and the console alike: a
mutation names itself first (``intend``; ``require(…, audit=…)`` does it for the
API), and ``audit_failures`` — a request-scoped dependency, so it runs after the
function-scoped unit of work has rolled back (or, for a decline, committed) —
appends an ``outcome = "failure"`` entry with the error's code in a transaction of
its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from paydesk.admin_actions import Action, Context
from paydesk.auth import audit, roles, tokens
from paydesk.auth.accounts import Principal
from paydesk.auth.roles import Permission
from paydesk.errors import AuthenticationRequired
from paydesk.logs import get_logger
from paydesk.settings import Settings
from paydesk.web.api.deps import SessionDep, SettingsDep

log = get_logger(__name__)


def source_address(request: Request) -> str | None:
    """The client's address as the server sees it (proxy headers per uvicorn's settings)."""
    return request.client.host if request.client else None


def admin_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The admin behind ``Authorization: Bearer pdk_…``; 401 without a usable token."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise AuthenticationRequired(
            "The Admin API needs a token: Authorization: Bearer pdk_…", code="token_required"
        )
    principal = tokens.authenticate(session, settings, credential.strip())
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(admin_principal)]


@dataclass(frozen=True)
class Intent:
    """The mutation a request attempts: how its failure is named in the audit log."""

    action: str
    target: str | None
    via: str  # "api" | "console"


def intend(request: Request, action: str, target: str | None, *, via: str) -> None:
    """Name the mutation this request attempts; if it then fails, the failure is audited."""
    request.state.audit_intent = Intent(action, target[:255] if target else None, via)


def record_failure(request: Request, error: BaseException) -> None:
    """Append the failure entry of the request's mutation, committed on its own.

    Nothing happens unless the request named its mutation (``intend``) and an admin
    was identified. The entry keeps the error's code, never its message (which may
    quote input). A database that cannot take the entry is logged, never raised:
    the caller is answering the original failure.
    """
    intent: Intent | None = getattr(request.state, "audit_intent", None)
    principal: Principal | None = getattr(request.state, "principal", None)
    if intent is None or principal is None:
        return
    if isinstance(error, RequestValidationError | DataError):
        details: dict[str, Any] = {"error": "invalid_input"}
    else:
        details = audit.failure_details(error)
    settings: Settings = request.app.state.settings
    sessions: sessionmaker[Session] = request.app.state.sessions
    try:
        with sessions() as session:
            audit.record(
                session,
                settings,
                actor=principal.actor,
                action=intent.action,
                target=intent.target,
                outcome=audit.FAILURE,
                after={**details, "via": intent.via},
                source_address=source_address(request),
            )
            session.commit()
    except SQLAlchemyError as exc:
        log.warning(
            "audit_failure_not_recorded",
            action=intent.action,
            error=details["error"],
            error_type=type(exc).__name__,
        )


def audit_failures(request: Request) -> Iterator[None]:
    """Dependency: audit the failure of the request's mutation (see ``record_failure``).

    Request-scoped (FastAPI's default), so its exit runs after the function-scoped
    unit of work (``SessionDep``) has ended: the entry is written once the failed
    work is rolled back and its locks (SQLite's write lock too) are released.
    """
    try:
        yield
    except Exception as exc:
        record_failure(request, exc)
        raise


AuditFailures = Depends(audit_failures)


def _target(request: Request, template: str | None) -> str | None:
    if template is not None:
        return template.format(**request.path_params)
    values = list(request.path_params.values())
    return str(values[0]) if values else None


def require(
    permission: Permission, *, audit_as: str | None = None, target: str | None = None
) -> DependsParam:
    """A route dependency: 401 without a token, 403 unless the role holds ``permission``.

    ``audit_as`` names the mutation the route makes, so that its failure — this refusal
    included — is audited; ``target`` formats the entry's target from the path
    parameters (default: the first one).
    """

    def check(request: Request, principal: PrincipalDep, settings: SettingsDep) -> Principal:
        if audit_as is not None:
            intend(request, audit_as, _target(request, target), via="api")
        roles.check(principal.role, permission, live=settings.key_mode == "live")
        return principal

    # Read by the matrix test: which permission guards a route.
    setattr(check, "permission", permission)  # noqa: B010
    dependency: DependsParam = Depends(check)
    return dependency


def require_action(action: Action) -> DependsParam:
    """The route dependency of an admin action: its declared permission, its audit name."""
    return require(action.permission, audit_as=action.name)


def action_context(
    request: Request, session: Session, settings: Settings, principal: Principal, *, via: str
) -> Context:
    """The context admin actions run in: an attempt is named for ``audit_failures``."""

    def attempted(action: str, target: str | None) -> None:
        intend(request, action, target, via=via)

    return Context(session, settings, principal, source_address(request), via, attempted)


def api_context(
    request: Request, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Context:
    """Dependency: the admin action context of an Admin API request."""
    return action_context(request, session, settings, principal, via="api")


ContextDep = Annotated[Context, Depends(api_context)]
