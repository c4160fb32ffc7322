"""Console access: API tokens and admin accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk.auth import accounts, roles, tokens
from paydesk.auth.roles import Permission
from paydesk.db.models import AdminUser
from paydesk.errors import InvalidInput, PermissionDenied
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import (
    PREFIX,
    FormDep,
    PrincipalDep,
    attempt,
    confirm,
    form_field,
    is_live,
    need,
    render,
    settings_of,
    source_of,
)

router = APIRouter()


@router.get("/access")
def access(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    manage = roles.can(principal.role, Permission.ADMINS_MANAGE, live=is_live(request))
    admins = list(session.scalars(select(AdminUser).order_by(AdminUser.email))) if manage else []
    owners = {user.id: user.email for user in admins}
    return render(
        request,
        "access.html",
        {
            "tokens": tokens.list_tokens(session, None if manage else principal.user_id),
            "admins": admins,
            "owners": owners,
            "roles": roles.ROLES,
            "manage": manage,
            "now": datetime.now(UTC),
        },
    )


@router.post("/tokens")
def create_token(
    request: Request, session: SessionDep, principal: PrincipalDep, form: FormDep
) -> Response:
    attempt(request, "token.create", None)
    need(request, principal, Permission.TOKENS_OWN)
    role = form_field(form, "role")
    if roles.rank(role) > roles.rank(principal.role):
        raise PermissionDenied("A token cannot have more rights than you.", field="role")
    try:
        days = int(form_field(form, "days") or tokens.DEFAULT_DAYS)
    except ValueError as exc:
        raise InvalidInput("Days: a whole number.", field="days") from exc
    user = accounts.get_admin(session, principal.user_id)
    row, raw = tokens.create(
        session,
        settings_of(request),
        user,
        name=form_field(form, "name"),
        role=role,
        days=days,
        actor=principal.actor,
        source_address=source_of(request),
    )
    return render(request, "token_created.html", {"token": raw, "row": row})


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    token_id: int,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    attempt(request, "token.revoke", f"token:{token_id}")
    need(request, principal, Permission.TOKENS_OWN)
    if form_field(form, "confirm") != "yes":
        return confirm(
            request,
            title="Confirm token revocation",
            summary=[f"Revoke API token {token_id}? Programs using it stop working at once."],
            action=f"{PREFIX}/tokens/{token_id}/revoke",
            fields={},
            button="Revoke",
        )
    tokens.revoke(
        session,
        settings_of(request),
        token_id,
        by=principal,
        may_manage_others=roles.can(principal.role, Permission.ADMINS_MANAGE, live=False),
        source_address=source_of(request),
    )
    return RedirectResponse(f"{PREFIX}/access", status_code=303)


@router.post("/admins")
def create_admin(
    request: Request, session: SessionDep, principal: PrincipalDep, form: FormDep
) -> Response:
    attempt(request, "admin.create", form_field(form, "email") or None)
    need(request, principal, Permission.ADMINS_MANAGE)
    user, password = accounts.create_admin(
        session,
        settings_of(request),
        email=form_field(form, "email"),
        role=form_field(form, "role"),
        actor=principal.actor,
        source_address=source_of(request),
    )
    return render(request, "admin_created.html", {"user": user, "password": password})


@router.post("/admins/{admin_id}/{action}")
def admin_action(
    admin_id: int,
    action: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    name = {"disable": "disable", "reset-2fa": "reset_2fa", "role": "role"}.get(action)
    if name is not None:
        attempt(request, f"admin.{name}", f"admin:{admin_id}")
    need(request, principal, Permission.ADMINS_MANAGE)
    if name is None:
        raise StarletteHTTPException(404)
    user = accounts.get_admin(session, admin_id)
    settings = settings_of(request)
    if form_field(form, "confirm") != "yes":
        role = form_field(form, "role")
        text = {
            "disable": f"Disable {user.email}? Their sessions and tokens end at once.",
            "reset-2fa": f"Reset two-factor of {user.email}? They enrol again at next sign-in.",
            "role": f"Change {user.email}'s role from {user.role} to {role}?",
        }[action]
        return confirm(
            request,
            title="Confirm",
            summary=[text],
            action=f"{PREFIX}/admins/{admin_id}/{action}",
            fields={"role": role} if action == "role" else {},
            button=action.replace("-", " ").capitalize(),
        )
    source = source_of(request)
    if action == "disable":
        accounts.disable_admin(
            session, settings, user, actor=principal.actor, source_address=source
        )
    elif action == "reset-2fa":
        accounts.reset_two_factor(
            session, settings, user, actor=principal.actor, source_address=source
        )
    else:
        accounts.set_role(
            session,
            settings,
            user,
            form_field(form, "role"),
            actor=principal.actor,
            source_address=source,
        )
    return RedirectResponse(f"{PREFIX}/access", status_code=303)
