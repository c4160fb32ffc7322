"""The console application: its page routers, error pages and static files.

A sub-application mounted at ``/admin`` so its errors render as HTML pages while
the Admin API keeps JSON; the status codes still come from ``paydesk.web.errors``.
The pages themselves live in ``paydesk.web.console.pages`` (one router per page
group); what they share is in ``paydesk.web.console.common``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk.errors import PaydeskError
from paydesk.web.api.admin_auth import AuditFailures
from paydesk.web.console.common import (
    HERE,
    Redirect,
    data_error,
    http_error,
    paydesk_error,
    redirect,
    validation_error,
)
from paydesk.web.console.pages import (
    access,
    audit,
    customers,
    dashboard,
    disputes,
    events,
    payments,
    refunds,
    sign_in,
    subscriptions,
    system,
)

PAGES = (
    sign_in,
    dashboard,
    payments,
    refunds,
    subscriptions,
    customers,
    disputes,
    events,
    system,
    audit,
    access,
)


def build_console(parent: FastAPI) -> FastAPI:
    """The console app; ``parent`` shares its settings, database and gateway."""
    # AuditFailures: a form's mutation that fails (or is refused) is audited too.
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, dependencies=[AuditFailures])
    app.state.settings = parent.state.settings
    app.state.sessions = parent.state.sessions
    app.state.gateway = parent.state.gateway
    app.add_exception_handler(PaydeskError, paydesk_error)
    app.add_exception_handler(Redirect, redirect)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(DataError, data_error)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # "/admin" itself: a router cannot hold an empty path, the app can.
    app.add_api_route("", dashboard.home, methods=["GET"])
    for module in PAGES:
        # Added route by route (not include_router): each gets the app's dependencies
        # and the app's route list stays flat, as route-listing tools expect.
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            app.add_api_route(
                route.path,
                route.endpoint,
                methods=sorted(route.methods or ()),
                name=route.name,
                dependencies=route.dependencies,
            )
    return app
