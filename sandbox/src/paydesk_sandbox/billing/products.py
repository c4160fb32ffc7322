"""``/v1/products``: create, retrieve, update, list, delete."""

from __future__ import annotations

from paydesk_sandbox.billing import prices
from paydesk_sandbox.billing.catalog import create_product, get_product
from paydesk_sandbox.billing.common import changed, matches, snapshot
from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json

router = Router()

_WRITABLE = (
    "active",
    "description",
    "images",
    "marketing_features",
    "metadata",
    "name",
    "package_dimensions",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "tax_details",
    "unit_label",
    "url",
)


@router.post("/v1/products", params=("id", "default_price_data", "type", *_WRITABLE))
def create(ctx: Ctx) -> Json:
    obj = create_product(ctx, ctx.params.data)
    price_data = ctx.params.sub("default_price_data")
    if price_data is not None:
        price = prices.create_price(ctx, price_data, product_id=obj["id"])
        before = snapshot(obj)
        obj["default_price"] = price["id"]
        ctx.state.emit("product.updated", obj, changed(before, obj))
    return obj


@router.get("/v1/products/{id}")
def retrieve(ctx: Ctx) -> Json:
    return get_product(ctx.state, ctx.path["id"])


@router.post("/v1/products/{id}", params=("default_price", *_WRITABLE))
def update(ctx: Ctx) -> Json:
    obj = get_product(ctx.state, ctx.path["id"])
    before = snapshot(obj)
    p = ctx.params
    for key in ("description", "statement_descriptor", "tax_code", "unit_label", "url"):
        if key in p:
            obj[key] = p.string(key)
    if "name" in p:
        obj["name"] = p.required_string("name")
    if "active" in p:
        obj["active"] = p.boolean("active", True)
    if "shippable" in p:
        obj["shippable"] = p.boolean("shippable")
    if "images" in p:
        obj["images"] = p.strings("images") or []
    obj["metadata"] = p.metadata(obj["metadata"])
    if "default_price" in p:
        price_id = p.string("default_price")
        if price_id is not None:
            price = prices.get_price(ctx.state, price_id, param="default_price")
            if price["product"] != obj["id"]:
                raise invalid_request(
                    f"The price `{price_id}` does not belong to product `{obj['id']}`.",
                    param="default_price",
                )
        obj["default_price"] = price_id
    diff = changed(before, obj)
    if diff:
        obj["updated"] = ctx.now
        ctx.state.emit("product.updated", obj, diff)
    return obj


@router.list("/v1/products", params=("active", "created", "ids", "shippable", "type", "url"))
def list_products(ctx: Ctx) -> Json:
    p = ctx.params
    active = p.boolean("active")
    shippable = p.boolean("shippable")
    ids = p.strings("ids")
    url = p.string("url")
    rows = (
        o
        for o in ctx.state.iter_newest_first("product")
        if matches(o, "active", active)
        and matches(o, "shippable", shippable)
        and matches(o, "url", url)
        and (ids is None or o["id"] in ids)
    )
    return paginate(ctx, created_filter(ctx, rows), "/v1/products")


@router.delete("/v1/products/{id}")
def delete(ctx: Ctx) -> Json:
    obj = get_product(ctx.state, ctx.path["id"])
    if any(price["product"] == obj["id"] for price in ctx.state.store("price").values()):
        raise invalid_request(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    del ctx.state.store("product")[obj["id"]]
    ctx.state.emit("product.deleted", obj)
    return {"id": obj["id"], "object": "product", "deleted": True}
