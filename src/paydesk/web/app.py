"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.types import Receive, Scope, Send

from paydesk import __version__
from paydesk.analytics.prometheus import PaydeskMetrics
from paydesk.auth.app_users import AppTokenVerifier
from paydesk.db.engine import create_engine, session_factory
from paydesk.settings import Settings
from paydesk.stripe_gateway import build_gateway
from paydesk.web import health, metrics
from paydesk.web.api import (
    admin_access,
    admin_customers,
    admin_disputes,
    admin_metrics,
    admin_pay_links,
    admin_payments,
    admin_subscriptions,
)
from paydesk.web.api import billing as billing_api
from paydesk.web.api import webhooks as webhooks_api
from paydesk.web.console import build_console
from paydesk.web.errors import install_console_error_pages, install_error_handlers
from paydesk.web.limits import BodyGateMiddleware
from paydesk.web.middleware import RequestContextMiddleware
from paydesk.web.notices import Notices
from paydesk.web.portal import build_portal
from paydesk.web.security import SecurityHeadersMiddleware


class PaydeskApp(FastAPI):
    """FastAPI, with webhook deliveries (the one hot path) served before any of its layers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if webhooks_api.is_delivery(scope):
            await webhooks_api.serve_delivery(self.state, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings, *, engine: Engine | None = None, notices: Notices | None = None
) -> FastAPI:
    """Build the Paydesk ASGI app from ``settings``.

    ``engine`` may be given by the caller (tests, the demo) to share one pool;
    otherwise one is created from ``settings.database_url`` and disposed on shutdown.
    """
    owns_engine = engine is None
    db_engine = engine or create_engine(settings.database_url.get_secret_value())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            db_engine.dispose()

    app = PaydeskApp(
        title="Paydesk",
        version=__version__,
        description="Payment gateway and Admin Center backend on Stripe.",
        lifespan=lifespan,
        docs_url="/docs" if settings.env == "development" else None,
        # The API description maps every route: published in development only
        # (`paydesk docs api` renders it from the code anywhere).
        openapi_url="/openapi.json" if settings.env == "development" else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.notices = notices or Notices()
    app.state.engine = db_engine
    app.state.sessions = session_factory(db_engine)
    install_error_handlers(app)
    # Innermost of the three: the request id and security headers are on its refusals.
    app.add_middleware(BodyGateMiddleware, state=app.state)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.state.metrics = PaydeskMetrics(
        app.state.sessions,
        cache_seconds=settings.metrics_cache_seconds,
        key_created=settings.stripe_key_created,
    )
    app.state.gateway = (
        build_gateway(settings, observers=[app.state.metrics.observe_stripe])
        if settings.stripe_secret_key
        else None
    )
    app.state.app_tokens = AppTokenVerifier(settings)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(webhooks_api.router)
    app.include_router(billing_api.router)
    # Every Admin API route requires a role-scoped API token (paydesk.auth).
    for router in (
        admin_customers.router,
        admin_payments.router,
        admin_pay_links.router,
        admin_subscriptions.router,
        admin_disputes.router,
        admin_access.router,
        admin_metrics.router,
    ):
        app.include_router(router)
    console = build_console(app)  # the Admin Center console (HTML)
    console.state.notices = app.state.notices  # its pages show the app's banners
    install_console_error_pages(console)
    app.mount("/admin", console)
    app.mount("/portal", build_portal(app))  # the customer portal (HTML + Stripe.js)
    return app
