"""Sandbox-only routes under ``/_sandbox`` (no Stripe equivalent, no auth).

- ``POST /_sandbox/reset``: forget everything (objects, events, idempotency keys).
- ``GET /_sandbox/deliveries[?endpoint=we_…]``: the webhook delivery log (every
  attempt, ``data``) and the deliveries still owed after a failure (``failing``:
  attempts, last error, next attempt), with ``owed``: how many are not acknowledged.
- ``POST /_sandbox/snapshot``: write the state to the configured snapshot file.
- ``POST /_sandbox/clock`` ``advance=<seconds>``: move the sandbox clock forward.
- ``GET /_sandbox/faults``: the fault mode's settings and counters of injected faults.
- ``PUT /_sandbox/faults`` ``share=0.3&kinds=500,429&seed=7&path=/v1/refunds&methods=POST
  &hold_seconds=5&retry_after=1``: change the settings given (the rest stay); counters
  keep counting.
- ``DELETE /_sandbox/faults``: faults off, counters cleared (the answer holds the last ones).
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.faults import apply_settings
from paydesk_sandbox.routing import Ctx, Router

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
    deliverer = ctx.state.deliverer
    owed = deliverer.owed_pairs() if deliverer is not None else []
    failing = deliverer.failing() if deliverer is not None else []
    return {
        "object": "list",
        "data": rows,
        "has_more": False,
        "url": "/_sandbox/deliveries",
        "owed": sum(1 for pair in owed if endpoint is None or pair[0] == endpoint),
        "failing": [f for f in failing if endpoint is None or f["endpoint"] == endpoint],
    }


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


_FAULT_SETTINGS = ("share", "kinds", "seed", "path", "methods", "hold_seconds", "retry_after")


@router.internal("GET", "/_sandbox/faults")
def faults(ctx: Ctx) -> Json:
    """The fault mode: share, kinds, seed, path filter and what was injected so far."""
    return ctx.state.faults.describe()


@router.internal("PUT", "/_sandbox/faults")
def configure_faults(ctx: Ctx) -> Json:
    """Change the fault mode's settings (those given; ``kinds`` comma-separated or kinds[])."""
    raw = ctx.params.data
    unknown = sorted(set(raw) - set(_FAULT_SETTINGS))
    if unknown:
        raise invalid_request(f"Received unknown parameter: {unknown[0]}", param=unknown[0])
    values = {name: raw[name] for name in _FAULT_SETTINGS if name in raw}
    try:
        config = apply_settings(ctx.state.faults.config, values)
    except ValueError as exc:
        raise invalid_request(str(exc).removeprefix("faults: ")) from exc
    ctx.state.faults.configure(config)
    return ctx.state.faults.describe()


@router.internal("DELETE", "/_sandbox/faults")
def clear_faults(ctx: Ctx) -> Json:
    """Turn faults off and clear the counters; answers with the state before."""
    before = ctx.state.faults.describe()
    ctx.state.faults.clear()
    return before
