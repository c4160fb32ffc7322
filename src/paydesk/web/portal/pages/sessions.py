"""Opening a portal session from its single-use link, signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paydesk.auth import portal_sessions
from paydesk.errors import NotFound
from paydesk.web.api.deps import SessionDep
from paydesk.web.portal.common import PREFIX, AnySessionDep, FormDep, render, settings_of

router = APIRouter()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or settings_of(request).env != "development"


@router.get("/session/{token}")
def open_session(token: str, request: Request, session: SessionDep) -> Response:
    opened = portal_sessions.open_link(session, settings_of(request), token)
    if opened is None:
        raise NotFound(
            "This billing link has expired or was already used. "
            "Open billing again from the app, or ask for a new link.",
            code="portal_link_invalid",
        )
    row, cookie = opened
    target = f"{PREFIX}/" if row.purpose == "portal" else f"{PREFIX}/pay/{row.target}"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        portal_sessions.COOKIE,
        cookie,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.headers["referrer-policy"] = "no-referrer"
    return response


@router.post("/logout")
def logout(request: Request, row: AnySessionDep, form: FormDep) -> Response:
    portal_sessions.end(row)
    target = row.return_url or f"{PREFIX}/signed-out"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(portal_sessions.COOKIE, path=PREFIX)
    return response


@router.get("/signed-out")
def signed_out(request: Request) -> Response:
    return render(request, "signed_out.html")
