"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from paydesk import __version__
from paydesk.auth.app_users import AppTokenVerifier
from paydesk.db.engine import create_engine, session_factory
from paydesk.settings import Settings
from paydesk.stripe_gateway import build_gateway
from paydesk.web import health
from paydesk.web.api import admin_customers, admin_payments, admin_subscriptions
from paydesk.web.api import billing as billing_api
from paydesk.web.api import webhooks as webhooks_api
from paydesk.web.errors import install_error_handlers
from paydesk.web.middleware import RequestContextMiddleware


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
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

    app = FastAPI(
        title="Paydesk",
        version=__version__,
        description="Payment gateway and Admin Center backend on Stripe.",
        lifespan=lifespan,
        docs_url="/docs" if settings.env == "development" else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = db_engine
    app.state.sessions = session_factory(db_engine)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.state.gateway = build_gateway(settings) if settings.stripe_secret_key else None
    app.state.app_tokens = AppTokenVerifier(settings)
    app.include_router(health.router)
    app.include_router(webhooks_api.router)
    app.include_router(billing_api.router)
    if settings.env == "development":
        # Admin authentication arrives with the console; until then the Admin API
        # exists only where every caller is the local developer.
        for router in (admin_customers.router, admin_payments.router, admin_subscriptions.router):
            app.include_router(router)
    return app
