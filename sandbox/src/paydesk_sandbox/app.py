"""The sandbox's Starlette application.

``RESOURCE_MODULES`` is the registry: every module listed exposes ``router`` (a
:class:`~paydesk_sandbox.routing.Router`) and is mounted by :func:`create_app`.
The billing half keeps its own list, ``paydesk_sandbox.billing.RESOURCE_MODULES``,
which is mounted after this one, so each half edits only its own files.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.errors import StripeError
from paydesk_sandbox.faults import FaultMiddleware
from paydesk_sandbox.protocol import json_response, make_endpoint
from paydesk_sandbox.routing import Router
from paydesk_sandbox.state import SandboxState
from paydesk_sandbox.webhooks import WebhookDeliverer

RESOURCE_MODULES: list[str] = [
    "paydesk_sandbox.admin",
    "paydesk_sandbox.resources.customers",
    "paydesk_sandbox.resources.payment_methods",
    "paydesk_sandbox.resources.setup_intents",
    "paydesk_sandbox.resources.payment_intents_http",
    "paydesk_sandbox.resources.charges",
    "paydesk_sandbox.resources.refunds",
    "paydesk_sandbox.resources.disputes",
    "paydesk_sandbox.resources.events",
    "paydesk_sandbox.resources.webhook_endpoints",
    "paydesk_sandbox.resources.three_d_secure",
    "paydesk_sandbox.resources.balance",
    "paydesk_sandbox.stripe_js",
]
BILLING_PACKAGE = "paydesk_sandbox.billing"


def module_names() -> list[str]:
    """Our modules, then the billing half's ``RESOURCE_MODULES`` (if present)."""
    try:
        billing = importlib.import_module(BILLING_PACKAGE)
    except ModuleNotFoundError as exc:
        if exc.name != BILLING_PACKAGE:
            raise
        return list(RESOURCE_MODULES)
    return [*RESOURCE_MODULES, *getattr(billing, "RESOURCE_MODULES", [])]


def _routers() -> list[Router]:
    return [importlib.import_module(name).router for name in module_names()]


def create_app(state: SandboxState | None = None, config: SandboxConfig | None = None) -> Starlette:
    """A new, independent sandbox app (its own state unless ``state`` is given)."""
    state = state or SandboxState(config)
    routers = _routers()
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
