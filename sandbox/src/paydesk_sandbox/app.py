"""The sandbox's Starlette application.

``ROUTERS`` is the registry: the router of every resource module, core modules
(``CORE_ROUTERS``) then the billing half (``BILLING_ROUTERS``), each module imported
normally. A new resource module adds its ``router`` to one of the two lists.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paydesk_sandbox import admin, includes, stripe_js
from paydesk_sandbox.billing import admin as billing_admin
from paydesk_sandbox.billing import (
    coupons,
    discounts,
    invoice_items,
    invoices,
    prices,
    products,
    subscription_items,
    subscription_updates,
    subscriptions,
    test_clocks,
)
from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.errors import StripeError
from paydesk_sandbox.faults import FaultMiddleware
from paydesk_sandbox.protocol import json_response, make_endpoint
from paydesk_sandbox.resources import (
    balance,
    charges,
    customers,
    disputes,
    events,
    files,
    payment_intents_http,
    payment_methods,
    refunds,
    setup_intents,
    surface,
    three_d_secure,
    webhook_endpoints,
)
from paydesk_sandbox.routing import Router
from paydesk_sandbox.state import SandboxState
from paydesk_sandbox.webhooks import WebhookDeliverer

CORE_ROUTERS: list[Router] = [
    admin.router,
    customers.router,
    payment_methods.router,
    setup_intents.router,
    payment_intents_http.router,
    charges.router,
    refunds.router,
    disputes.router,
    files.router,
    events.router,
    webhook_endpoints.router,
    three_d_secure.router,
    balance.router,
    surface.router,
    includes.router,
    stripe_js.router,
]
BILLING_ROUTERS: list[Router] = [
    products.router,
    prices.router,
    subscriptions.router,
    subscription_updates.router,
    subscription_items.router,
    invoices.router,
    invoice_items.router,
    test_clocks.router,
    coupons.router,
    discounts.router,
    billing_admin.router,
]
ROUTERS: list[Router] = [*CORE_ROUTERS, *BILLING_ROUTERS]


def create_app(state: SandboxState | None = None, config: SandboxConfig | None = None) -> Starlette:
    """A new, independent sandbox app (its own state unless ``state`` is given)."""
    state = state or SandboxState(config)
    routers = ROUTERS
    specs = [spec for router in routers for spec in router.routes]
    # Literal paths before templated ones, so /v1/customers/search is not taken
    # for /v1/customers/{id} with id "search" (sort is stable otherwise).
    specs.sort(key=lambda spec: spec.path.count("{"))
    routes = [Route(s.path, make_endpoint(s, state), methods=[s.method]) for s in specs]
    for router in routers:
        for event_type, listener in router.listeners:
            state.listeners.setdefault(event_type, []).append(listener)
        state.expanders.update(router.expanders)
    routes.append(
        Route("/{path:path}", _unrecognized(state), methods=["GET", "POST", "DELETE", "PUT"])
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        import asyncio

        loop = asyncio.get_running_loop()
        state.load()
        deliverer = WebhookDeliverer(state)
        state.deliverer = deliverer
        await deliverer.start()
        state.attach_loop(lambda delay, fn: _call_later(loop, delay, fn))
        try:
            yield
        finally:
            await deliverer.stop()
            state.save()

    faults = Middleware(
        FaultMiddleware,
        injector=state.faults,
        new_request_id=lambda: state.new_id("req"),
    )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[faults])
    app.state.sandbox = state
    return app


def _call_later(loop: Any, delay: float, fn: Any) -> None:
    loop.call_soon_threadsafe(loop.call_later, delay, fn)


def _unrecognized(state: SandboxState) -> Any:
    async def endpoint(request: Request) -> Response:
        request_id = state.new_id("req")
        error = StripeError(
            404,
            "invalid_request_error",
            f"Unrecognized request URL ({request.method}: {request.url.path}). "
            "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )
        return json_response(
            error.body(request_id, state.now()), 404, request_id, state.config.api_version
        )

    return endpoint
