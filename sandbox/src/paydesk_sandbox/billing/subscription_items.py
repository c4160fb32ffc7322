"""``/v1/subscription_items``: retrieve, list, create, update, delete.

Changes go through the subscription update path so that items prorate and invoice
exactly like ``POST /v1/subscriptions/{id} items[...]``.
"""

from __future__ import annotations

from dataclasses import replace

from paydesk_sandbox.billing import lifecycle
from paydesk_sandbox.billing.subscription_updates import update_subscription
from paydesk_sandbox.errors import resource_missing
from paydesk_sandbox.listing import paginate
from paydesk_sandbox.params import Params
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState

router = Router()


# ---- subscription items ---------------------------------------------------------
def _find_item(state: SandboxState, item_id: str) -> Json:
    for subscription in state.store("subscription").values():
        for item in subscription["items"]["data"]:
            if item["id"] == item_id:
                return item  # type: ignore[no-any-return]
    raise resource_missing("subscription item", item_id)


@router.get("/v1/subscription_items/{id}")
def retrieve_item(ctx: Ctx) -> Json:
    return _find_item(ctx.state, ctx.path["id"])


@router.list("/v1/subscription_items", params=("subscription",))
def list_items(ctx: Ctx) -> Json:
    subscription_id = ctx.params.required_string("subscription")
    subscription = lifecycle.get_subscription(ctx.state, subscription_id, param="subscription")
    return paginate(
        ctx,
        list(subscription["items"]["data"]),
        f"/v1/subscription_items?subscription={subscription_id}",
    )


def _item_change(ctx: Ctx, subscription_id: str, item: Json) -> Json:
    """Run ``POST /v1/subscriptions/{id}`` with one ``items[0]`` entry built from an
    item-level request, so both paths prorate and invoice identically."""
    p = ctx.params
    data: Json = {"items": [item]}
    for key in ("proration_behavior", "proration_date", "payment_behavior"):
        if key in p:
            data[key] = p.data[key]
    return update_subscription(replace(ctx, params=Params(data), path={"id": subscription_id}))


_ITEM_WRITE = ("price", "quantity", "metadata", "proration_behavior", "proration_date",
               "payment_behavior", "off_session")  # fmt: skip


# Stripe takes off_session on item updates only.
@router.post(
    "/v1/subscription_items",
    params=("subscription", *(k for k in _ITEM_WRITE if k != "off_session")),
)
def create_item(ctx: Ctx) -> Json:
    p = ctx.params
    subscription_id = p.required_string("subscription")
    lifecycle.get_subscription(ctx.state, subscription_id, param="subscription")
    spec: Json = {"price": p.required_string("price")}
    for key in ("quantity", "metadata"):
        if key in p:
            spec[key] = p.data[key]
    subscription = _item_change(ctx, subscription_id, spec)
    return subscription["items"]["data"][-1]  # type: ignore[no-any-return]


@router.post("/v1/subscription_items/{id}", params=_ITEM_WRITE)
def update_item(ctx: Ctx) -> Json:
    item = _find_item(ctx.state, ctx.path["id"])
    spec: Json = {"id": item["id"]}
    for key in ("price", "quantity", "metadata"):
        if key in ctx.params:
            spec[key] = ctx.params.data[key]
    _item_change(ctx, item["subscription"], spec)
    return _find_item(ctx.state, item["id"])


@router.delete(
    "/v1/subscription_items/{id}", params=("proration_behavior", "proration_date", "clear_usage")
)
def delete_item(ctx: Ctx) -> Json:
    item = _find_item(ctx.state, ctx.path["id"])
    _item_change(ctx, item["subscription"], {"id": item["id"], "deleted": "true"})
    return {"id": item["id"], "object": "subscription_item", "deleted": True}
