"""``/v1/prices``: create, retrieve, update, list (lookup keys included)."""

from __future__ import annotations

from paydesk_sandbox.billing import periods, shapes
from paydesk_sandbox.billing.catalog import create_product, get_product
from paydesk_sandbox.billing.common import (
    amount,
    changed,
    currency,
    matches,
    required_currency,
    required_enum,
    snapshot,
)
from paydesk_sandbox.errors import invalid_request, parameter_missing
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.params import Params
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState

router = Router()

_CREATE_PARAMS = (
    "active",
    "billing_scheme",
    "currency",
    "currency_options",
    "custom_unit_amount",
    "lookup_key",
    "metadata",
    "nickname",
    "product",
    "product_data",
    "recurring",
    "tax_behavior",
    "tiers",
    "tiers_mode",
    "transfer_lookup_key",
    "transform_quantity",
    "unit_amount",
    "unit_amount_decimal",
)
_UPDATE_PARAMS = (
    "active",
    "currency_options",
    "lookup_key",
    "metadata",
    "nickname",
    "tax_behavior",
    "transfer_lookup_key",
)


def get_price(state: SandboxState, price_id: str, param: str = "id") -> Json:
    """The price or a 404 ``No such price``."""
    return state.get("price", price_id, label="price", param=param)


def product_of(state: SandboxState, price_id: str | None) -> str | None:
    """The product id of a stored price (None for no price or an unknown one)."""
    price = state.store("price").get(price_id) if price_id else None
    return str(price["product"]) if price else None


def _claim_lookup_key(ctx: Ctx, key: str | None, transfer: bool, owner_id: str | None) -> None:
    """Make ``key`` free for a price, moving it off its holder when ``transfer`` is set."""
    if key is None:
        return
    for other in ctx.state.store("price").values():
        if other["lookup_key"] == key and other["id"] != owner_id:
            if not transfer:
                raise invalid_request(
                    f"A price (`{other['id']}`) already uses that lookup key.",
                    param="lookup_key",
                )
            before = snapshot(other)
            other["lookup_key"] = None
            ctx.state.emit("price.updated", other, changed(before, other))


def _recurring(params: Params) -> Json | None:
    rec = params.sub("recurring")
    if rec is None:
        return None
    interval = required_enum(rec, "interval", periods.INTERVALS)
    count = rec.integer("interval_count", minimum=1) or 1
    # Stripe caps a recurring interval at one year (or 52 weeks, 365 days, 12 months).
    limits = {"day": 365, "week": 52, "month": 12, "year": 1}
    if count > limits[interval]:
        raise invalid_request(
            "Invalid recurring interval: the maximum is one year (1 year, 12 months, "
            "52 weeks or 365 days).",
            param="recurring[interval_count]",
        )
    usage = rec.enum("usage_type", ("licensed", "metered"))
    if usage == "metered":
        raise invalid_request(
            "The sandbox supports licensed (per-seat) prices only.",
            param="recurring[usage_type]",
        )
    return shapes.recurring(interval, count)


def create_price(ctx: Ctx, params: Params, *, product_id: str | None = None) -> Json:
    """Store a price; ``product_id`` is given when created via ``default_price_data``."""
    cur = required_currency(params)
    scheme = params.enum("billing_scheme", ("per_unit", "tiered"))
    if scheme == "tiered" or "tiers" in params or "custom_unit_amount" in params:
        raise invalid_request(
            "The sandbox supports per-unit prices only.", param=params.name("billing_scheme")
        )
    unit_amount = amount(params, "unit_amount")
    if unit_amount is None and params.string("unit_amount_decimal") is not None:
        decimal = params.required_string("unit_amount_decimal")
        if not decimal.isdigit():
            raise invalid_request(
                "The sandbox supports whole-minor-unit amounts only.",
                param=params.name("unit_amount_decimal"),
            )
        unit_amount = int(decimal)
    if unit_amount is None:
        raise parameter_missing(params.name("unit_amount"))
    recurring = _recurring(params)
    if product_id is None:
        product_id = params.string("product")
        product_data = params.sub("product_data")
        if product_id is not None and product_data is not None:
            raise invalid_request(
                "You may only specify one of these parameters: product, product_data.",
                param="product_data",
            )
        if product_id is not None:
            get_product(ctx.state, product_id, param="product")
        elif product_data is not None:
            product_id = create_product(ctx, product_data.data, "product_data")["id"]
        else:
            raise parameter_missing("product")
    lookup_key = params.string("lookup_key")
    _claim_lookup_key(ctx, lookup_key, bool(params.boolean("transfer_lookup_key")), None)
    obj = shapes.price(
        id=ctx.state.new_id("price"),
        created=ctx.now,
        product_id=product_id,
        currency=cur,
        unit_amount=unit_amount,
        recurring_hash=recurring,
        params=params.data,
    )
    obj["active"] = params.boolean("active", True)
    obj["metadata"] = params.metadata()
    obj["tax_behavior"] = (
        params.enum("tax_behavior", ("exclusive", "inclusive", "unspecified")) or "unspecified"
    )
    ctx.state.add(obj)
    ctx.state.emit("price.created", obj)
    return obj


@router.post("/v1/prices", params=_CREATE_PARAMS)
def create(ctx: Ctx) -> Json:
    return create_price(ctx, ctx.params)


@router.get("/v1/prices/{id}")
def retrieve(ctx: Ctx) -> Json:
    return get_price(ctx.state, ctx.path["id"])


@router.post("/v1/prices/{id}", params=_UPDATE_PARAMS)
def update(ctx: Ctx) -> Json:
    obj = get_price(ctx.state, ctx.path["id"])
    before = snapshot(obj)
    p = ctx.params
    if "lookup_key" in p:
        key = p.string("lookup_key")
        _claim_lookup_key(ctx, key, bool(p.boolean("transfer_lookup_key")), obj["id"])
        obj["lookup_key"] = key
    if "active" in p:
        obj["active"] = p.boolean("active", True)
    if "nickname" in p:
        obj["nickname"] = p.string("nickname")
    if "tax_behavior" in p:
        obj["tax_behavior"] = p.enum("tax_behavior", ("exclusive", "inclusive", "unspecified"))
    obj["metadata"] = p.metadata(obj["metadata"])
    diff = changed(before, obj)
    if diff:
        ctx.state.emit("price.updated", obj, diff)
    return obj


@router.list(
    "/v1/prices",
    params=("active", "created", "currency", "lookup_keys", "product", "recurring", "type"),
)
def list_prices(ctx: Ctx) -> Json:
    p = ctx.params
    active = p.boolean("active")
    cur = currency(p, required=False)
    product_id = p.string("product")
    price_type = p.enum("type", ("one_time", "recurring"))
    lookup_keys = p.strings("lookup_keys")
    if lookup_keys is not None and len(lookup_keys) > 10:
        raise invalid_request("You can pass up to 10 lookup keys.", param="lookup_keys")
    rec = p.sub("recurring")
    interval = rec.enum("interval", periods.INTERVALS) if rec is not None else None
    rows = (
        o
        for o in ctx.state.iter_newest_first("price")
        if matches(o, "active", active)
        and matches(o, "currency", cur)
        and matches(o, "product", product_id)
        and matches(o, "type", price_type)
        and (lookup_keys is None or o["lookup_key"] in lookup_keys)
        and (interval is None or (o["recurring"] or {}).get("interval") == interval)
    )
    return paginate(ctx, created_filter(ctx, rows), "/v1/prices")
