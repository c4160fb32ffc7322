"""``/v1/events``: list and retrieve what :meth:`SandboxState.emit` recorded."""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.routing import Ctx, Router

Json = dict[str, Any]
router = Router()


@router.list("/v1/events", params={"type", "types", "created", "delivery_success"})
def list_events(ctx: Ctx) -> Json:
    """Newest first; ``type`` (``charge.*`` wildcards), ``types[]``, ``created[...]``."""
    one = ctx.params.string("type")
    many = ctx.params.strings("types")
    if one is not None and many is not None:
        raise invalid_request("You cannot specify both `type` and `types`.", param="types")
    if many is not None and len(many) > 20:
        raise invalid_request("You may pass at most 20 `types`.", param="types")
    items: Any = ctx.state.iter_newest_first("event")
    if one is not None:
        if one.endswith("*"):
            prefix = one[:-1]
            items = (e for e in items if e["type"].startswith(prefix))
        else:
            items = (e for e in items if e["type"] == one)
    elif many is not None:
        wanted = set(many)
        items = (e for e in items if e["type"] in wanted)
    delivered = ctx.params.boolean("delivery_success")
    if delivered is not None:
        items = (e for e in items if (e["pending_webhooks"] == 0) == delivered)
    return paginate(ctx, created_filter(ctx, items))


@router.get("/v1/events/{id}")
def retrieve_event(ctx: Ctx) -> Json:
    """One event by id."""
    return ctx.state.get("event", ctx.path["id"], label="event")
