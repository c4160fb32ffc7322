"""``/v1/payment_intents`` endpoints over the status machine in payment_intents.py."""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import invalid_request, parameter_missing, unexpected_state
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.money import check_amount, check_currency
from paydesk_sandbox.params import Params
from paydesk_sandbox.resources.customer_lookup import get_customer
from paydesk_sandbox.resources.payment_intents import (
    CANCELLATION_REASONS,
    CAPTURE_METHODS,
    CONFIRMABLE,
    cancel_intent,
    capture_intent,
    confirm_intent,
    create_intent,
    get_intent,
    method_types_param,
)
from paydesk_sandbox.routing import Ctx, Router

Json = dict[str, Any]
router = Router()


_SHARED = {
    "amount",
    "currency",
    "customer",
    "description",
    "metadata",
    "payment_method",
    "allowed_payment_method_types",
    "payment_method_types",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "capture_method",
    "payment_method_options",
    "payment_method_data",
    "transfer_group",
    "application_fee_amount",
    "transfer_data",
    "excluded_payment_method_types",
    "payment_method_configuration",
}
_CONFIRM = {
    "payment_method",
    "return_url",
    "off_session",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "payment_method_options",
    "allowed_payment_method_types",
    "payment_method_types",
    "mandate_data",
    "mandate",
    "error_on_requires_action",
    "use_stripe_sdk",
    "capture_method",
    "payment_method_data",
    "radar_options",
    "confirmation_token",
}
_CREATE = (
    _SHARED
    | _CONFIRM
    | {
        "confirm",
        "automatic_payment_methods",
        "confirmation_method",
        "on_behalf_of",
    }
)


def _shipping(p: Params) -> Json | None:
    from paydesk_sandbox.resources.customers import shipping

    return shipping(p.sub("shipping"))


def _automatic(p: Params) -> Json | None:
    sub = p.sub("automatic_payment_methods")
    if sub is None:
        return None
    enabled = sub.boolean("enabled")
    if enabled is None:
        raise parameter_missing("automatic_payment_methods[enabled]")
    redirects = sub.enum("allow_redirects", ("always", "never")) or "always"
    return {"allow_redirects": redirects, "enabled": enabled}


def _confirm_from_params(ctx: Ctx, intent: Json, p: Params) -> Json:
    off_session = p.raw("off_session") not in (None, "", "false")
    if p.boolean("error_on_requires_action"):
        off_session = True
    return_url = p.string("return_url")
    auto = intent["automatic_payment_methods"]
    if (
        auto is not None
        and auto.get("enabled")
        and auto.get("allow_redirects") != "never"
        and return_url is None
        and not off_session
    ):
        raise invalid_request(
            "This PaymentIntent is configured to accept payment methods enabled in your "
            "Dashboard. Because some of these payment methods might redirect your customer off "
            "of your page, you must provide a `return_url`. If you don't want to accept "
            "redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` "
            "and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup "
            "Intents and Payment Intents.",
            param="return_url",
        )
    pm_value = p.string("payment_method")
    pm_data = p.sub("payment_method_data")
    if pm_value is None and pm_data is not None:
        from paydesk_sandbox.resources.payment_methods import payment_method_from_params

        pm_value = payment_method_from_params(ctx.state, pm_data)["id"]
    error = confirm_intent(
        ctx.state,
        intent,
        payment_method=pm_value,
        off_session=off_session,
        return_url=return_url,
        base_url=ctx.base_url,
    )
    if error is not None:
        raise error
    return intent


@router.post("/v1/payment_intents", params=_CREATE)
def create_payment_intent(ctx: Ctx) -> Json:
    """Create (and with ``confirm=true`` confirm) a PaymentIntent."""
    p = ctx.params
    amount = p.required_integer("amount")
    currency = p.required_string("currency")
    confirm = p.boolean("confirm", default=False)
    intent = create_intent(
        ctx.state,
        amount=amount,
        currency=currency,
        customer=p.string("customer"),
        payment_method=p.string("payment_method"),
        description=p.string("description"),
        metadata=p.metadata(),
        capture_method=p.enum("capture_method", CAPTURE_METHODS) or "automatic",
        setup_future_usage=p.enum("setup_future_usage", ("on_session", "off_session")),
        payment_method_types=method_types_param(p),
        receipt_email=p.string("receipt_email"),
        shipping=_shipping(p),
        statement_descriptor=p.string("statement_descriptor"),
        statement_descriptor_suffix=p.string("statement_descriptor_suffix"),
        confirmation_method=p.enum("confirmation_method", ("automatic", "manual")) or "automatic",
        automatic_payment_methods=_automatic(p),
    )
    if confirm:
        confirm_params = Params({k: v for k, v in p.data.items() if k != "payment_method"})
        return _confirm_from_params(ctx, intent, confirm_params)
    return intent


@router.get("/v1/payment_intents/{id}", params={"client_secret"})
def retrieve_payment_intent(ctx: Ctx) -> Json:
    """One PaymentIntent."""
    return get_intent(ctx.state, ctx.path["id"])


@router.post("/v1/payment_intents/{id}", params=_SHARED)
def update_payment_intent(ctx: Ctx) -> Json:
    """Update a PaymentIntent that is not yet processed."""
    state, p = ctx.state, ctx.params
    intent = get_intent(state, ctx.path["id"])
    if intent["status"] not in (*CONFIRMABLE, "requires_capture") or (
        intent["status"] == "requires_capture" and ("amount" in p or "currency" in p)
    ):
        raise unexpected_state(
            f"This PaymentIntent's status ({intent['status']}) does not allow this update."
        )
    currency = check_currency(p.string("currency") or intent["currency"])
    amount = p.integer("amount")
    if amount is not None or "currency" in p:
        check_amount(amount if amount is not None else intent["amount"], currency)
    customer = p.string("customer")
    if customer is not None:
        get_customer(state, customer, param="customer")
        intent["customer"] = customer
    if amount is not None:
        intent["amount"] = amount
    intent["currency"] = currency
    for key in (
        "description",
        "receipt_email",
        "statement_descriptor",
        "statement_descriptor_suffix",
    ):
        if key in p:
            intent[key] = p.string(key)
    if "setup_future_usage" in p:
        intent["setup_future_usage"] = p.enum("setup_future_usage", ("on_session", "off_session"))
    if "capture_method" in p:
        intent["capture_method"] = p.enum("capture_method", CAPTURE_METHODS) or "automatic"
    if "shipping" in p:
        intent["shipping"] = _shipping(p)
    if "payment_method_types" in p or "allowed_payment_method_types" in p:
        intent["payment_method_types"] = method_types_param(p) or ["card"]
    intent["metadata"] = p.metadata(intent["metadata"])
    pm_value = p.string("payment_method")
    if pm_value is not None:
        from paydesk_sandbox.resources.payment_methods import resolve

        intent["payment_method"] = resolve(state, pm_value)["id"]
        intent["status"] = "requires_confirmation"
    return intent


@router.post("/v1/payment_intents/{id}/confirm", params=_CONFIRM)
def confirm_payment_intent(ctx: Ctx) -> Json:
    """Confirm: succeed, decline (402) or ask for 3-D Secure."""
    intent = get_intent(ctx.state, ctx.path["id"])
    return _confirm_from_params(ctx, intent, ctx.params)


@router.post(
    "/v1/payment_intents/{id}/capture",
    params={
        "amount_to_capture",
        "metadata",
        "final_capture",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "application_fee_amount",
        "transfer_data",
    },
)
def capture_payment_intent(ctx: Ctx) -> Json:
    """Capture a ``requires_capture`` PaymentIntent."""
    intent = get_intent(ctx.state, ctx.path["id"])
    intent["metadata"] = ctx.params.metadata(intent["metadata"])
    return capture_intent(ctx.state, intent, ctx.params.integer("amount_to_capture"))


@router.post("/v1/payment_intents/{id}/cancel", params={"cancellation_reason"})
def cancel_payment_intent(ctx: Ctx) -> Json:
    """Cancel a PaymentIntent that has not succeeded."""
    intent = get_intent(ctx.state, ctx.path["id"])
    reason = ctx.params.enum("cancellation_reason", CANCELLATION_REASONS)
    return cancel_intent(ctx.state, intent, reason)


@router.list("/v1/payment_intents", params={"customer", "created"})
def list_payment_intents(ctx: Ctx) -> Json:
    """Newest first; filters ``customer`` and ``created``."""
    items: Any = ctx.state.iter_newest_first("payment_intent")
    customer = ctx.params.string("customer")
    if customer is not None:
        items = (i for i in items if i["customer"] == customer)
    return paginate(ctx, created_filter(ctx, items))


PAYMENT_INTENT_SEARCH_FIELDS = frozenset(
    {"amount", "created", "currency", "customer", "metadata", "status"}
)


@router.get("/v1/payment_intents/search", params={"query", "limit", "page"})
def search_payment_intents(ctx: Ctx) -> Json:
    """``query=status:'succeeded' AND customer:'cus_…'`` etc."""
    from paydesk_sandbox.search import search

    items = ctx.state.iter_newest_first("payment_intent")
    return search(ctx, items, PAYMENT_INTENT_SEARCH_FIELDS, "payment_intents")
