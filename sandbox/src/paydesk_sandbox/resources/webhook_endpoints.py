"""``/v1/webhook_endpoints``: where events are delivered (see webhooks.py)."""

from __future__ import annotations

import functools
import typing
from typing import Any

import stripe

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.listing import paginate
from paydesk_sandbox.params import Params
from paydesk_sandbox.routing import Ctx, Router

Json = dict[str, Any]
router = Router()
_LABEL = "webhook endpoint"


def _check_url(params: Params) -> str | None:
    url = params.string("url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise invalid_request("Invalid URL: must be an http(s) URL", param="url")
    return url


@functools.cache
def known_event_types() -> frozenset[str]:
    """Every event type Stripe accepts in ``enabled_events`` at our API version,
    read from the pinned SDK's typed parameters (so the list can't drift)."""
    hint = stripe.params.WebhookEndpointCreateParams.__annotations__["enabled_events"]
    return frozenset(typing.get_args(typing.get_args(hint)[0]))


def _api_version(ctx: Ctx) -> str | None:
    """An endpoint's events are rendered at its ``api_version``; the sandbox renders
    objects in one version's shapes only (its configured one), so it refuses others
    rather than send shapes the endpoint did not ask for."""
    version = ctx.params.string("api_version")
    renderable = ctx.state.config.api_version
    if version is not None and version != renderable:
        raise invalid_request(
            f"Invalid api_version: the sandbox renders events at {renderable} only "
            f"and cannot render {version}. Create the endpoint with "
            f"api_version={renderable}, or without one.",
            param="api_version",
        )
    return version


def _events(params: Params) -> list[str] | None:
    events = params.strings("enabled_events")
    if events is not None and not events:
        raise invalid_request("enabled_events must not be empty", param="enabled_events")
    known = known_event_types()
    for i, name in enumerate(events or []):
        if name not in known:
            raise invalid_request(
                f"Invalid enabled_events[{i}]: must be one of the event types of this API "
                f"version or *; '{name}' is not one.",
                param=f"enabled_events[{i}]",
            )
    return events


@router.post(
    "/v1/webhook_endpoints",
    params={"url", "enabled_events", "api_version", "description", "metadata", "connect"},
)
def create_webhook_endpoint(ctx: Ctx) -> Json:
    """Create an endpoint; the only response that carries ``secret``."""
    p = ctx.params
    url = _check_url(p)
    if url is None:
        p.required_string("url")
    events = _events(p)
    if events is None:
        p.required_string("enabled_events")
    version = _api_version(ctx)
    state = ctx.state
    endpoint: Json = {
        "id": state.new_id("we"),
        "object": "webhook_endpoint",
        "api_version": version,
        "application": None,
        "created": ctx.now,
        "description": p.string("description"),
        "enabled_events": events,
        "livemode": False,
        "metadata": p.metadata(),
        "status": "enabled",
        "url": url,
    }
    state.add(endpoint)
    secret = state.new_id("whsec", 32)
    state.private_of(endpoint["id"])["secret"] = secret
    return {**endpoint, "secret": secret}


@router.get("/v1/webhook_endpoints/{id}")
def retrieve_webhook_endpoint(ctx: Ctx) -> Json:
    """One endpoint (without its secret)."""
    return ctx.state.get("webhook_endpoint", ctx.path["id"], label=_LABEL)


@router.post(
    "/v1/webhook_endpoints/{id}",
    params={"url", "enabled_events", "description", "metadata", "disabled"},
)
def update_webhook_endpoint(ctx: Ctx) -> Json:
    """Change url, events, description, metadata or ``disabled``."""
    endpoint = ctx.state.get("webhook_endpoint", ctx.path["id"], label=_LABEL)
    p = ctx.params
    url = _check_url(p)
    events = _events(p)
    disabled = p.boolean("disabled")
    if url is not None:
        endpoint["url"] = url
    if events is not None:
        endpoint["enabled_events"] = events
    if "description" in p:
        endpoint["description"] = p.string("description")
    endpoint["metadata"] = p.metadata(endpoint["metadata"])
    if disabled is not None:
        endpoint["status"] = "disabled" if disabled else "enabled"
    return endpoint


@router.delete("/v1/webhook_endpoints/{id}")
def delete_webhook_endpoint(ctx: Ctx) -> Json:
    """Delete an endpoint; pending retries to it stop."""
    state = ctx.state
    endpoint = state.get("webhook_endpoint", ctx.path["id"], label=_LABEL)
    del state.store("webhook_endpoint")[endpoint["id"]]
    return {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}


@router.list("/v1/webhook_endpoints")
def list_webhook_endpoints(ctx: Ctx) -> Json:
    """All endpoints, newest first."""
    return paginate(ctx, ctx.state.iter_newest_first("webhook_endpoint"))
