"""``/v1/coupons`` and ``/v1/promotion_codes``: create, retrieve, update, list, delete.

A coupon is a percent (``percent_off``, up to two decimals) or an amount
(``amount_off`` in minor units of ``currency``) off, applied ``once``, for
``duration_in_months`` (``repeating``) or ``forever``; ``max_redemptions`` and
``redeem_by`` limit it, after which it is no longer ``valid``. A promotion code is a
customer-facing code for one coupon, with its own limits and ``restrictions``.
:func:`redeem` checks all of them and counts a redemption (used by discounts).
"""

from __future__ import annotations

import re
import string

from paydesk_sandbox.billing.common import amount, changed, currency, snapshot
from paydesk_sandbox.errors import invalid_request, parameter_missing, resource_missing
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.params import Params
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState

router = Router()

_COUPON_CREATE = (
    "id",
    "amount_off",
    "currency",
    "currency_options",
    "duration",
    "duration_in_months",
    "max_redemptions",
    "metadata",
    "name",
    "percent_off",
    "redeem_by",
    "applies_to",
)
_PROMO_CREATE = (
    "promotion",
    "code",
    "active",
    "customer",
    "expires_at",
    "max_redemptions",
    "metadata",
    "restrictions",
)
_PERCENT = re.compile(r"^\d{1,3}(\.\d{1,2})?$")
_CODE_ALPHABET = string.ascii_uppercase + string.digits


# ---- coupons --------------------------------------------------------------------
def get_coupon(state: SandboxState, coupon_id: str, param: str = "id") -> Json:
    """The coupon or a 404 ``No such coupon``."""
    return state.get("coupon", coupon_id, label="coupon", param=param)


def _percent(params: Params) -> float | None:
    raw = params.string("percent_off")
    if raw is None:
        return None
    if not _PERCENT.match(raw) or not 0 < float(raw) <= 100:
        raise invalid_request(
            "Invalid percent_off: must be greater than 0 and less than or equal to 100.",
            param="percent_off",
        )
    return float(raw)


def _new_coupon_id(state: SandboxState) -> str:
    return "".join(state.rng.choice(_CODE_ALPHABET) for _ in range(8))


@router.post("/v1/coupons", params=_COUPON_CREATE)
def create_coupon(ctx: Ctx) -> Json:
    p = ctx.params
    percent = _percent(p)
    off = amount(p, "amount_off")
    if (percent is None) == (off is None):
        raise invalid_request(
            "You must pass exactly one of percent_off or amount_off.",
            param="percent_off" if percent is None else "amount_off",
        )
    cur = currency(p, required=off is not None)
    if off is not None and off < 1:
        raise invalid_request("Invalid amount_off: must be at least 1.", param="amount_off")
    duration = p.enum("duration", ("once", "repeating", "forever")) or "once"
    months = p.integer("duration_in_months", minimum=1)
    if duration == "repeating" and months is None:
        raise parameter_missing("duration_in_months")
    if duration != "repeating" and months is not None:
        raise invalid_request(
            "duration_in_months is only allowed with duration=repeating.",
            param="duration_in_months",
        )
    coupon_id = p.string("id") or _new_coupon_id(ctx.state)
    if coupon_id in ctx.state.store("coupon"):
        raise invalid_request("Coupon already exists.", param="id", code="resource_already_exists")
    redeem_by = p.integer("redeem_by")
    if redeem_by is not None and redeem_by <= ctx.now:
        raise invalid_request("Invalid redeem_by: must be in the future.", param="redeem_by")
    applies_to = p.sub("applies_to")
    products = (applies_to.strings("products") or []) if applies_to else []
    for index, product_id in enumerate(products):
        _check_product(ctx.state, product_id, f"applies_to[products][{index}]")
    options = _currency_options(p, off, cur)
    coupon: Json = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": off,
        "created": ctx.now,
        "currency": cur if off is not None else None,
        "duration": duration,
        "duration_in_months": months,
        "livemode": False,
        "max_redemptions": p.integer("max_redemptions", minimum=1),
        "metadata": p.metadata(),
        "name": p.string("name"),
        "percent_off": percent,
        "redeem_by": redeem_by,
        "times_redeemed": 0,
        "valid": True,
    }
    ctx.state.add(coupon)
    ctx.state.private_of(coupon_id)["applies_to"] = {"products": products}
    ctx.state.private_of(coupon_id)["currency_options"] = options
    ctx.state.emit("coupon.created", coupon)
    return coupon


@router.expandable("coupon", "applies_to")
def _applies_to(state: SandboxState, coupon: Json) -> Json:
    return dict(state.private_of(coupon["id"]).get("applies_to") or {"products": []})


def _check_product(state: SandboxState, product_id: str, param: str) -> None:
    """A coupon can only be restricted to products that exist."""
    state.get("product", product_id, label="product", param=param)


def _currency_options(p: Params, amount_off: int | None, own: str | None) -> dict[str, Json]:
    """``currency_options[<cur>][amount_off]``: the amount off in other currencies
    (amount-off coupons only)."""
    raw = p.sub("currency_options")
    if raw is None:
        return {}
    if amount_off is None:
        raise invalid_request(
            "currency_options can only be set on coupons with amount_off.",
            param="currency_options",
        )
    options: dict[str, Json] = {}
    for code in raw.data:
        sub = raw.sub(code)
        name = f"currency_options[{code}][amount_off]"
        if sub is None or not re.fullmatch(r"[a-zA-Z]{3}", code):
            raise invalid_request(f"Invalid currency: {code[:20]}.", param="currency_options")
        value = amount(sub, "amount_off")
        if value is None:
            raise parameter_missing(name)
        if value < 1:
            raise invalid_request(f"Invalid {name}: must be at least 1.", param=name)
        if code.lower() != own:
            options[code.lower()] = {"amount_off": value}
    return options


@router.expandable("coupon", "currency_options")
def _coupon_currency_options(state: SandboxState, coupon: Json) -> Json | None:
    """Includable: the amount off in each currency, the coupon's own first."""
    if coupon["amount_off"] is None:
        return None
    options = {coupon["currency"]: {"amount_off": coupon["amount_off"]}}
    options.update(state.private_of(coupon["id"]).get("currency_options") or {})
    return options


@router.get("/v1/coupons/{id}")
def retrieve_coupon(ctx: Ctx) -> Json:
    return get_coupon(ctx.state, ctx.path["id"])


@router.post("/v1/coupons/{id}", params=("metadata", "name", "currency_options"))
def update_coupon(ctx: Ctx) -> Json:
    coupon = get_coupon(ctx.state, ctx.path["id"])
    before = snapshot(coupon)
    if "name" in ctx.params:
        coupon["name"] = ctx.params.string("name")
    if "currency_options" in ctx.params:
        added = _currency_options(ctx.params, coupon["amount_off"], coupon["currency"])
        ctx.state.private_of(coupon["id"]).setdefault("currency_options", {}).update(added)
    coupon["metadata"] = ctx.params.metadata(coupon["metadata"])
    diff = changed(before, coupon)
    if diff:
        ctx.state.emit("coupon.updated", coupon, diff)
    return coupon


@router.list("/v1/coupons", params=("created",))
def list_coupons(ctx: Ctx) -> Json:
    return paginate(ctx, created_filter(ctx, ctx.state.iter_newest_first("coupon")))


@router.delete("/v1/coupons/{id}")
def delete_coupon(ctx: Ctx) -> Json:
    """Deleting a coupon stops new redemptions; discounts that use it stay."""
    coupon = get_coupon(ctx.state, ctx.path["id"])
    del ctx.state.store("coupon")[coupon["id"]]
    ctx.state.private_of(coupon["id"])["deleted"] = coupon
    ctx.state.emit("coupon.deleted", coupon)
    return {"id": coupon["id"], "object": "coupon", "deleted": True}


def refresh_validity(coupon: Json, now: int) -> None:
    """``valid`` is false once fully redeemed or past ``redeem_by``."""
    limit = coupon["max_redemptions"]
    expired = coupon["redeem_by"] is not None and coupon["redeem_by"] <= now
    coupon["valid"] = not expired and (limit is None or coupon["times_redeemed"] < limit)


# ---- promotion codes ------------------------------------------------------------
def get_promotion_code(state: SandboxState, code_id: str, param: str = "id") -> Json:
    """The promotion code or a 404 ``No such promotion code``."""
    return state.get("promotion_code", code_id, label="promotion code", param=param)


def _restrictions(params: Params | None) -> Json:
    restrictions: Json = {
        "first_time_transaction": False,
        "minimum_amount": None,
        "minimum_amount_currency": None,
    }
    if params is None:
        return restrictions
    restrictions["first_time_transaction"] = params.boolean("first_time_transaction", False)
    minimum = amount(params, "minimum_amount")
    if minimum is not None:
        restrictions["minimum_amount"] = minimum
        restrictions["minimum_amount_currency"] = currency(params, "minimum_amount_currency")
    return restrictions


@router.post("/v1/promotion_codes", params=_PROMO_CREATE)
def create_promotion_code(ctx: Ctx) -> Json:
    p = ctx.params
    promotion = p.sub("promotion")
    if promotion is None:
        raise parameter_missing("promotion")
    if (promotion.string("type") or "coupon") != "coupon":
        raise invalid_request("Invalid promotion[type]: must be coupon.", param="promotion[type]")
    coupon = get_coupon(ctx.state, promotion.required_string("coupon"), param="promotion[coupon]")
    code = p.string("code") or "".join(ctx.state.rng.choice(_CODE_ALPHABET) for _ in range(8))
    if any(
        c["code"].lower() == code.lower() and c["active"]
        for c in ctx.state.store("promotion_code").values()
    ):
        raise invalid_request(
            f"An active promotion code with `code: {code}` already exists.",
            param="code",
            code="resource_already_exists",
        )
    customer = p.string("customer")
    if customer is not None and customer not in ctx.state.store("customer"):
        raise resource_missing("customer", customer, param="customer")
    obj: Json = {
        "id": ctx.state.new_id("promo"),
        "object": "promotion_code",
        "active": p.boolean("active", True),
        "code": code,
        "created": ctx.now,
        "customer": customer,
        "customer_account": None,
        "expires_at": p.integer("expires_at"),
        "livemode": False,
        "max_redemptions": p.integer("max_redemptions", minimum=1),
        "metadata": p.metadata(),
        "promotion": {"coupon": coupon["id"], "type": "coupon"},
        "restrictions": _restrictions(p.sub("restrictions")),
        "times_redeemed": 0,
    }
    ctx.state.add(obj)
    ctx.state.emit("promotion_code.created", obj)
    return obj


@router.get("/v1/promotion_codes/{id}")
def retrieve_promotion_code(ctx: Ctx) -> Json:
    return get_promotion_code(ctx.state, ctx.path["id"])


@router.post("/v1/promotion_codes/{id}", params=("active", "metadata", "restrictions"))
def update_promotion_code(ctx: Ctx) -> Json:
    obj = get_promotion_code(ctx.state, ctx.path["id"])
    before = snapshot(obj)
    if "active" in ctx.params:
        obj["active"] = ctx.params.boolean("active", obj["active"])
    obj["metadata"] = ctx.params.metadata(obj["metadata"])
    diff = changed(before, obj)
    if diff:
        ctx.state.emit("promotion_code.updated", obj, diff)
    return obj


@router.list("/v1/promotion_codes", params=("active", "code", "coupon", "customer", "created"))
def list_promotion_codes(ctx: Ctx) -> Json:
    p = ctx.params
    active = p.boolean("active")
    code, coupon, customer = p.string("code"), p.string("coupon"), p.string("customer")
    rows = (
        o
        for o in ctx.state.iter_newest_first("promotion_code")
        if (active is None or o["active"] == active)
        and (code is None or o["code"].lower() == code.lower())
        and (coupon is None or o["promotion"]["coupon"] == coupon)
        and (customer is None or o["customer"] == customer)
    )
    return paginate(ctx, created_filter(ctx, rows))


# ---- redemption -----------------------------------------------------------------
def redeemable(
    state: SandboxState,
    *,
    coupon_id: str | None,
    promotion_code_id: str | None,
    customer_id: str | None,
    amount_due: int | None,
    currency_code: str | None,
    now: int,
    param: str,
) -> tuple[Json, Json | None]:
    """The coupon (and promotion code) to apply, or the 400 Stripe answers when a
    limit or restriction forbids it."""
    promo: Json | None = None
    if promotion_code_id is not None:
        promo = get_promotion_code(state, promotion_code_id, param=param)
        expired = promo["expires_at"] is not None and promo["expires_at"] <= now
        used_up = (
            promo["max_redemptions"] is not None
            and promo["times_redeemed"] >= promo["max_redemptions"]
        )
        if not promo["active"] or expired or used_up:
            raise invalid_request(
                f"This promotion code cannot be redeemed: {promo['code']} is not active.",
                param=param,
            )
        if promo["customer"] is not None and promo["customer"] != customer_id:
            raise invalid_request(
                "This promotion code cannot be redeemed because the associated customer "
                "does not match.",
                param=param,
            )
        restrictions = promo["restrictions"]
        if restrictions["first_time_transaction"] and customer_id is not None:
            paid_before = any(
                i["customer"] == customer_id and i["status"] == "paid"
                for i in state.store("invoice").values()
            )
            if paid_before:
                raise invalid_request(
                    "This promotion code cannot be redeemed because it is restricted to "
                    "first-time customers.",
                    param=param,
                )
        minimum = restrictions["minimum_amount"]
        if (
            minimum is not None
            and amount_due is not None
            and (amount_due < minimum or currency_code != restrictions["minimum_amount_currency"])
        ):
            raise invalid_request(
                "This promotion code cannot be redeemed because the order amount is below "
                f"the minimum of {minimum} {restrictions['minimum_amount_currency']}.",
                param=param,
            )
        coupon_id = promo["promotion"]["coupon"]
    if coupon_id is None:
        raise parameter_missing(param)
    coupon = get_coupon(state, coupon_id, param=param)
    refresh_validity(coupon, now)
    if not coupon["valid"]:
        raise invalid_request(f"Coupon {coupon['id']} is no longer valid.", param=param)
    if coupon["currency"] is not None and currency_code not in (None, coupon["currency"]):
        options = state.private_of(coupon["id"]).get("currency_options") or {}
        if currency_code not in options:
            raise invalid_request(
                f"The coupon {coupon['id']} is in {coupon['currency']} and has no "
                f"currency_options for {currency_code}, so it cannot be applied to a "
                f"{currency_code} amount.",
                param=param,
            )
    return coupon, promo


def redeem(coupon: Json, promo: Json | None, now: int) -> None:
    """Count one redemption of the coupon (and promotion code); Stripe sends no event
    for the counters."""
    coupon["times_redeemed"] += 1
    refresh_validity(coupon, now)
    if promo is not None:
        promo["times_redeemed"] += 1
