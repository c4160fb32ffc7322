"""The customer portal application: its page routers, error pages and static files.

A sub-application mounted at ``/portal``. A customer arrives through a single-use
link (``/portal/session/{token}``, from ``POST /api/billing/portal-sessions`` or
an admin pay link) that starts a session scoped to their Stripe customer. Every
page and action loads that session; every form and JSON call carries its CSRF
token. Card data never reaches this server: the browser sends it to Stripe (or the
sandbox) through Stripe.js and this server only sees PaymentMethod, PaymentIntent
and SetupIntent ids, whose outcome it always re-reads from Stripe itself.

The pages themselves live in ``paydesk.web.portal.pages`` (one router per page
group); what they share is in ``paydesk.web.portal.common``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk.errors import InvalidInput, NotFound, PaydeskError
from paydesk.web.errors import error_response, status_for
from paydesk.web.portal.common import HERE, PREFIX, render
from paydesk.web.portal.pages import account, pay, plan, sessions, subscribe

# In the order their routes are matched.
PAGES = (sessions, account, plan, subscribe, pay)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(f"{PREFIX}/api/") or request.url.path.startswith("/api/")


async def _paydesk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PaydeskError)
    status = status_for(exc)
    if _wants_json(request):
        return error_response(request, status, exc.code, exc.message, exc.field, **exc.details)
    return render(
        request,
        "error.html",
        {"message": exc.message, "code": exc.code, "status": status},
        status=status,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    refused = (
        NotFound("No such page.", code="not_found")
        if exc.status_code == 404
        else InvalidInput(str(exc.detail), code="bad_request")
    )
    if exc.status_code not in (404, 422):
        status = exc.status_code
        if _wants_json(request):
            return error_response(request, status, "http_error", str(exc.detail))
        return render(request, "error.html", {"message": str(exc.detail)}, status=status)
    return await _paydesk_error(request, refused)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return await _paydesk_error(request, InvalidInput("The request is not valid."))


async def _data_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DataError)
    return await _paydesk_error(request, InvalidInput("A value of the request cannot be used."))


def build_portal(parent: FastAPI) -> FastAPI:
    """The portal app; ``parent`` shares its settings, database and gateway."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = parent.state.settings
    app.state.sessions = parent.state.sessions
    app.state.gateway = parent.state.gateway
    app.add_exception_handler(PaydeskError, _paydesk_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in PAGES:
        app.include_router(module.router)
    return app
