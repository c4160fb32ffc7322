"""Parsing and validation shared by the subscription endpoints."""

from __future__ import annotations

from paydesk_sandbox.billing import invoicing, prices, shapes
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.errors import invalid_request, parameter_missing, resource_missing
from paydesk_sandbox.params import Params
from paydesk_sandbox.routing import Ctx
from paydesk_sandbox.state import Json, SandboxState

BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete")
PRORATIONS = ("create_prorations", "none", "always_invoice")
MISSING_PM = ("cancel", "create_invoice", "pause")
# Accepted for compatibility; they change nothing in the sandbox (no tax, no Connect).
IGNORED = ("automatic_tax", "default_tax_rates", "on_behalf_of")
CREATE_PARAMS = (
    "customer",
    "billing_mode",
    "discounts",
    "items",
    "add_invoice_items",
    "billing_cycle_anchor",
    "cancel_at",
    "cancel_at_period_end",
    "collection_method",
    "currency",
    "days_until_due",
    "default_payment_method",
    "description",
    "metadata",
    "payment_behavior",
    "proration_behavior",
    "trial_end",
    "trial_period_days",
    "trial_settings",
    "off_session",
    "payment_settings",
    *IGNORED,
)
UPDATE_PARAMS = (
    "items",
    "discounts",
    "add_invoice_items",
    "billing_cycle_anchor",
    "cancel_at",
    "cancel_at_period_end",
    "cancellation_details",
    "collection_method",
    "days_until_due",
    "default_payment_method",
    "description",
    "metadata",
    "pause_collection",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
    "trial_end",
    "trial_settings",
    "off_session",
    "payment_settings",
    *IGNORED,
)


# ---- parameter helpers ----------------------------------------------------------
def attached_payment_method(state: SandboxState, customer_id: str, pm_id: str | None) -> str | None:
    """A PM id that must be attached to the customer (Stripe's own check)."""
    if pm_id is None:
        return None
    pm = state.store("payment_method").get(pm_id)
    if pm is None:
        raise resource_missing("PaymentMethod", pm_id, param="default_payment_method")
    if pm.get("customer") != customer_id:
        raise invalid_request(
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
            param="default_payment_method",
        )
    return pm_id


def recurring_price(ctx: Ctx, spec: Params) -> Json:
    price_id = spec.string("price")
    if price_id is None:
        data = spec.sub("price_data")
        if data is None:
            raise parameter_missing(spec.name("price"))
        inline = Params(dict(data.data), data.prefix)
        inline.data.setdefault("recurring", {"interval": "month"})
        price = prices.create_price(ctx, inline)
    else:
        price = prices.get_price(ctx.state, price_id, param=spec.name("price"))
    if price["recurring"] is None:
        raise invalid_request(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            param=spec.name("price"),
        )
    if not price["active"]:
        raise invalid_request(
            "The price specified is inactive. This field only accepts active prices.",
            param=spec.name("price"),
        )
    return price


def item_specs(ctx: Ctx, key: str = "items") -> list[Params]:
    raw = ctx.params.array(key) or []
    specs = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise invalid_request(f"Invalid object: {key}[{index}]", param=f"{key}[{index}]")
        specs.append(Params(entry, f"{key}[{index}]"))
    return specs


def timestamp_or_now(params: Params, key: str, now: int) -> int | None:
    value = params.string(key)
    if value is None:
        return None
    if value == "now":
        return now
    return params.integer(key)


def new_item(ctx: Ctx, subscription_id: str, price: Json, spec: Params, now: int) -> Json:
    return shapes.subscription_item(
        id=ctx.state.new_id("si"),
        created=now,
        subscription_id=subscription_id,
        price_object=price,
        quantity=spec.integer("quantity", minimum=0) or 1,
        period=(now, now),
        metadata=spec.metadata(),
    )


def check_compatible(items: list[Json], param: str) -> None:
    first = items[0]["price"]
    for item in items[1:]:
        price = item["price"]
        if price["currency"] != first["currency"]:
            raise invalid_request(
                "All prices on a subscription must have the same currency.", param=param
            )
        if price["recurring"]["interval"] != first["recurring"]["interval"] or (
            price["recurring"]["interval_count"] != first["recurring"]["interval_count"]
        ):
            raise invalid_request(
                "All prices on a subscription must have the same `recurring.interval` and "
                "`recurring.interval_count`.",
                param=param,
            )


def add_invoice_items(ctx: Ctx, subscription: Json, now: int) -> None:
    """One-off prices billed on the next invoice (``add_invoice_items``)."""
    for spec in item_specs(ctx, "add_invoice_items"):
        price_id = spec.required_string("price")
        price = prices.get_price(ctx.state, price_id, param=spec.name("price"))
        quantity = spec.integer("quantity", minimum=1) or 1
        customer = ctx.state.store("customer").get(subscription["customer"]) or {}
        obj = shapes.invoice_item(
            id=ctx.state.new_id("ii"),
            created=now,
            customer_id=subscription["customer"],
            amount=price["unit_amount"] * quantity,
            currency=price["currency"],
            description=invoicing.price_label(ctx.state, price).split(" (at")[0],
            period=(now, now),
            proration=False,
            subscription_id=subscription["id"],
            price_id=price["id"],
            product_id=price["product"],
            quantity=quantity,
            metadata={},
            test_clock=customer.get("test_clock"),
        )
        ctx.state.add(obj)
        emit(ctx.state, "invoiceitem.created", obj)


def apply_trial_settings(subscription: Json, p: Params) -> None:
    settings = p.sub("trial_settings")
    if settings is None:
        return
    end = settings.sub("end_behavior")
    if end is not None:
        missing = end.enum("missing_payment_method", MISSING_PM)
        if missing is not None:
            subscription["trial_settings"]["end_behavior"]["missing_payment_method"] = missing


def apply_payment_settings(subscription: Json, p: Params) -> None:
    """``payment_settings[save_default_payment_method]`` (other keys are accepted as-is)."""
    settings = p.sub("payment_settings")
    if settings is None:
        return
    choice = settings.enum("save_default_payment_method", ("off", "on_subscription"))
    if choice is not None:
        subscription["payment_settings"]["save_default_payment_method"] = choice


def billing_mode(p: Params) -> Json:
    """``billing_mode[type]`` (``classic`` or ``flexible``) and, for flexible,
    ``billing_mode[flexible][proration_discounts]`` (``included`` or ``itemized``)."""
    raw = p.sub("billing_mode")
    if raw is None:
        return {"type": "classic", "flexible": None}
    kind = raw.enum("type", ("classic", "flexible"), required=True)
    flexible = raw.sub("flexible")
    if kind != "flexible":
        if flexible is not None:
            raise invalid_request(
                "billing_mode[flexible] can only be set when billing_mode[type] is flexible.",
                param="billing_mode[flexible]",
            )
        return {"type": "classic", "flexible": None}
    choice = flexible.enum("proration_discounts", ("included", "itemized")) if flexible else None
    return {"type": "flexible", "flexible": {"proration_discounts": choice or "included"}}
