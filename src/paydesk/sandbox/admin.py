"""Sandbox-only routes under ``/_sandbox`` (no Stripe equivalent, no auth).

- ``POST /_sandbox/reset``: forget everything (objects, events, idempotency keys).
- ``GET /_sandbox/deliveries[?endpoint=we_…]``: the webhook delivery log.
- ``POST /_sandbox/snapshot``: write the state to the configured snapshot file.
- ``POST /_sandbox/clock`` ``advance=<seconds>``: move the sandbox clock forward.
"""

from __future__ import annotations

from typing import Any

from paydesk.sandbox.errors import invalid_request
from paydesk.sandbox.routing import Ctx, Router

Json = dict[str, Any]
router = Router()


@router.internal("POST", "/_sandbox/reset")
def reset(ctx: Ctx) -> Json:
    """Drop all state of this instance."""
    ctx.state.reset()
    if ctx.state.deliverer is not None:
        ctx.state.deliverer.log.clear()
    return {"object": "sandbox.reset", "ok": True}


@router.internal("GET", "/_sandbox/deliveries")
def deliveries(ctx: Ctx) -> Json:
    """Every delivery attempt, oldest first, optionally for one endpoint."""
    endpoint = ctx.params.string("endpoint")
    log = ctx.state.deliverer.log if ctx.state.deliverer is not None else []
    rows = [d for d in log if endpoint is None or d["endpoint"] == endpoint]
    return {"object": "list", "data": rows, "has_more": False, "url": "/_sandbox/deliveries"}


@router.internal("POST", "/_sandbox/snapshot")
def snapshot(ctx: Ctx) -> Json:
    """Persist the state now (it is also saved at shutdown)."""
    path = ctx.state.save()
    if path is None:
        raise invalid_request("This sandbox was started without a snapshot file.")
    return {"object": "sandbox.snapshot", "path": str(path)}


@router.internal("POST", "/_sandbox/clock")
def clock(ctx: Ctx) -> Json:
    """Shift the sandbox clock by ``advance`` seconds (test clocks are separate)."""
    ctx.state.clock_offset += ctx.params.integer("advance", minimum=0) or 0
    return {"object": "sandbox.clock", "now": ctx.state.now(), "offset": ctx.state.clock_offset}
