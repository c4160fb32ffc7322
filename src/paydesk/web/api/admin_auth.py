"""Authentication and authorisation of the Admin API: bearer tokens, the permission matrix.

Every route under ``/api/admin`` depends on ``require(permission)``: the caller's
token is checked (``paydesk.auth.tokens``) and its role is held against the one
matrix in ``paydesk.auth.roles`` that the console uses too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from paydesk.auth import audit, roles, tokens
from paydesk.auth.accounts import Principal
from paydesk.auth.roles import Permission
from paydesk.errors import AuthenticationRequired
from paydesk.web.api.deps import SessionDep, SettingsDep


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


def require(permission: Permission) -> DependsParam:
    """A route dependency: 401 without a token, 403 unless the role holds ``permission``."""

    def check(principal: PrincipalDep, settings: SettingsDep) -> Principal:
        roles.check(principal.role, permission, live=settings.key_mode == "live")
        return principal

    # Read by the matrix test: which permission guards a route.
    setattr(check, "permission", permission)  # noqa: B010
    dependency: DependsParam = Depends(check)
    return dependency


def record(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Principal,
    action: str,
    target: str | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Audit a mutation made through the Admin API (in the request's unit of work)."""
    audit.record(
        session,
        settings,
        actor=principal.actor,
        action=action,
        target=target,
        before=before,
        after={**(after or {}), "via": "api"},
        source_address=source_address(request),
    )
