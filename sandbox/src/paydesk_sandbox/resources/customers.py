"""``/v1/customers``."""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import resource_missing
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.params import Params
from paydesk_sandbox.resources.customer_lookup import get_customer
from paydesk_sandbox.resources.payment_methods import resolve_for_customer
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import SandboxState, changed_attributes, clone

Json = dict[str, Any]
router = Router()
__all__ = ["get_customer", "router"]

_ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")
_WRITABLE = {
    "address",
    "balance",
    "description",
    "email",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
}
_CREATE = _WRITABLE | {
    "payment_method",
    "source",
    "test_clock",
    "tax",
    "tax_id_data",
    "cash_balance",
    "validate",
}
_UPDATE = _WRITABLE | {
    "default_source",
    "source",
    "tax",
    "cash_balance",
    "validate",
}


def address(params: Params | None) -> Json | None:
    """A Stripe address hash from ``address[...]`` parameters."""
    if params is None:
        return None
    return {k: params.string(k) for k in _ADDRESS_KEYS}


def shipping(params: Params | None) -> Json | None:
    """A shipping hash (``name``, ``phone``, ``address``)."""
    if params is None:
        return None
    return {
        "address": address(params.sub("address")) or dict.fromkeys(_ADDRESS_KEYS),
        "name": params.string("name"),
        "phone": params.string("phone"),
    }


def _apply(state: SandboxState, customer: Json, p: Params, attached: list[Json]) -> None:
    for key in ("description", "email", "name", "phone"):
        if key in p:
            customer[key] = p.string(key)
    if "address" in p:
        customer["address"] = address(p.sub("address"))
    if "shipping" in p:
        customer["shipping"] = shipping(p.sub("shipping"))
    if "balance" in p:
        customer["balance"] = p.integer("balance") or 0
    if "invoice_prefix" in p:
        customer["invoice_prefix"] = p.string("invoice_prefix")
    if "next_invoice_sequence" in p:
        customer["next_invoice_sequence"] = p.integer("next_invoice_sequence", minimum=1)
    if "preferred_locales" in p:
        customer["preferred_locales"] = p.strings("preferred_locales") or []
    if "tax_exempt" in p:
        customer["tax_exempt"] = p.enum("tax_exempt", ("none", "exempt", "reverse")) or "none"
    customer["metadata"] = p.metadata(customer["metadata"])
    settings = p.sub("invoice_settings")
    if settings is not None and "default_payment_method" in settings:
        pm_value = settings.string("default_payment_method")
        customer["invoice_settings"]["default_payment_method"] = (
            None
            if pm_value is None
            else resolve_for_customer(
                state, pm_value, customer, "invoice_settings[default_payment_method]", attached
            )["id"]
        )
    if settings is not None and "footer" in settings:
        customer["invoice_settings"]["footer"] = settings.string("footer")


@router.post("/v1/customers", params=_CREATE)
def create_customer(ctx: Ctx) -> Json:
    """Create a customer (optionally on a test clock, with a PaymentMethod)."""
    state, p = ctx.state, ctx.params
    clock = p.string("test_clock")
    if clock is not None:
        state.get("test_helpers.test_clock", clock, label="test_clock", param="test_clock")
    customer_id = state.new_id("cus")
    customer: Json = {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": state.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": customer_id[4:12].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": clock,
    }
    if clock is not None:
        customer["created"] = _clock_time(state, clock)
    pm_value = p.string("payment_method") or p.string("source")
    attached: list[Json] = []
    state.add(customer)
    try:
        if pm_value is not None:
            resolve_for_customer(state, pm_value, customer, "payment_method", attached, True)
        _apply(state, customer, p, attached)
    except Exception:
        # A bad parameter or a declined card leaves no half-made customer behind.
        del state.store("customer")[customer_id]
        for pm in attached:
            pm["customer"] = None
        raise
    state.emit("customer.created", customer)
    for pm in attached:
        state.emit("payment_method.attached", pm)
    return customer


def _clock_time(state: SandboxState, clock_id: str) -> int:
    return int(state.store("test_helpers.test_clock")[clock_id]["frozen_time"])


@router.get("/v1/customers/{id}")
def retrieve_customer(ctx: Ctx) -> Json:
    """A customer; a deleted one answers ``{"deleted": true}`` like Stripe."""
    customer_id = ctx.path["id"]
    customer = ctx.state.store("customer").get(customer_id)
    if customer is None:
        if ctx.state.private.get(customer_id, {}).get("deleted"):
            return {"id": customer_id, "object": "customer", "deleted": True}
        raise resource_missing("customer", customer_id)
    return customer


@router.post("/v1/customers/{id}", params=_UPDATE)
def update_customer(ctx: Ctx) -> Json:
    """Update fields; emits ``customer.updated`` with ``previous_attributes``."""
    state = ctx.state
    customer = get_customer(state, ctx.path["id"])
    before = clone(customer)
    attached: list[Json] = []
    _apply(state, customer, ctx.params, attached)
    for pm in attached:
        state.emit("payment_method.attached", pm)
    previous = changed_attributes(before, customer)
    if previous:
        state.emit("customer.updated", customer, previous)
    return customer


@router.delete("/v1/customers/{id}")
def delete_customer(ctx: Ctx) -> Json:
    """Delete a customer (its PaymentMethods are detached, as in Stripe)."""
    state = ctx.state
    customer = get_customer(state, ctx.path["id"])
    del state.store("customer")[customer["id"]]
    state.private_of(customer["id"])["deleted"] = True
    for pm in state.store("payment_method").values():
        if pm["customer"] == customer["id"]:
            pm["customer"] = None
    state.emit("customer.deleted", customer)
    return {"id": customer["id"], "object": "customer", "deleted": True}


@router.list("/v1/customers", params={"email", "created", "test_clock"})
def list_customers(ctx: Ctx) -> Json:
    """Newest first; filters ``email``, ``created``, ``test_clock``."""
    items: Any = ctx.state.iter_newest_first("customer")
    email = ctx.params.string("email")
    clock = ctx.params.string("test_clock")
    if email is not None:
        items = (c for c in items if c["email"] == email)
    if clock is not None:
        items = (c for c in items if c["test_clock"] == clock)
    return paginate(ctx, created_filter(ctx, items))


CUSTOMER_SEARCH_FIELDS = frozenset({"created", "email", "metadata", "name", "phone"})


@router.get("/v1/customers/search", params={"query", "limit", "page"})
def search_customers(ctx: Ctx) -> Json:
    """``query=email:'a@b.c'`` etc. (see paydesk_sandbox.search)."""
    from paydesk_sandbox.search import search

    items = ctx.state.iter_newest_first("customer")
    return search(ctx, items, CUSTOMER_SEARCH_FIELDS, "customers")
