"""``/v1/setup_intents``: save a card for later off-session payments.

A succeeded SetupIntent attaches the card to the customer and marks it as set up,
which is what lets ``…3155`` cards pay off-session (see cards.card_outcome).
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.cards import ThreeDS
from paydesk_sandbox.errors import card_error, unexpected_state
from paydesk_sandbox.listing import created_filter, matching, paginate
from paydesk_sandbox.resources.customer_lookup import get_customer
from paydesk_sandbox.resources.payment_intents import method_types_param
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import SandboxState, clone

Json = dict[str, Any]
router = Router()
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def get_setup_intent(state: SandboxState, intent_id: str) -> Json:
    """A SetupIntent or 404."""
    return state.get("setup_intent", intent_id, label="setup_intent")


def confirm_setup(
    state: SandboxState, intent: Json, *, return_url: str | None, base_url: str
) -> None:
    """Confirm: succeed, ask for 3-D Secure, or raise the card's decline (402)."""
    from paydesk_sandbox.resources.payment_methods import card_of

    if intent["status"] not in CONFIRMABLE:
        raise unexpected_state(
            f"You cannot confirm this SetupIntent because it has a status of {intent['status']}.",
            code="setup_intent_unexpected_state",
        )
    if intent["payment_method"] is None:
        raise unexpected_state(
            "You cannot confirm this SetupIntent because it's missing a payment method.",
            code="setup_intent_unexpected_state",
        )
    pm = state.store("payment_method")[intent["payment_method"]]
    card = card_of(state, pm)
    intent["latest_attempt"] = state.new_id("setatt")
    if card.attach_fails and card.decline is not None:
        decline = card.decline
        intent["status"] = "requires_payment_method"
        intent["last_setup_error"] = {
            "code": decline.code,
            "decline_code": decline.decline_code,
            "message": decline.message,
            "payment_method": clone(pm),
            "type": "card_error",
        }
        intent["payment_method"] = None
        state.emit("setup_intent.setup_failed", intent)
        raise card_error(
            decline.code,
            decline.message,
            decline_code=decline.decline_code,
            extra={"setup_intent": clone(intent), "payment_method": pm},
        )
    if card.three_ds is not ThreeDS.NEVER:
        private = state.private_of(intent["id"])
        private["base_url"] = base_url
        if return_url is not None:
            private["return_url"] = return_url
        intent["status"] = "requires_action"
        intent["next_action"] = (
            {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": f"{base_url}/_sandbox/3ds/{intent['id']}",
                    "return_url": return_url,
                },
            }
            if return_url is not None
            else {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
        )
        state.emit("setup_intent.requires_action", intent)
        return
    succeed_setup(state, intent)


def succeed_setup(state: SandboxState, intent: Json) -> None:
    """Mark the card set up (and attach it to the intent's customer)."""
    from paydesk_sandbox.resources.payment_methods import attach

    pm = state.store("payment_method")[intent["payment_method"]]
    state.private_of(pm["id"])["set_up"] = True
    if intent["customer"] is not None:
        customer = state.store("customer").get(intent["customer"])
        if customer is not None and pm["customer"] is None:
            attach(state, pm, customer)
    intent["status"] = "succeeded"
    intent["next_action"] = None
    intent["last_setup_error"] = None
    state.emit("setup_intent.succeeded", intent)


def fail_setup_authentication(state: SandboxState, intent: Json) -> None:
    """The Fail button of the 3-D Secure page."""
    pm = state.store("payment_method")[intent["payment_method"]]
    intent["status"] = "requires_payment_method"
    intent["next_action"] = None
    intent["payment_method"] = None
    intent["last_setup_error"] = {
        "code": "setup_intent_authentication_failure",
        "message": "The latest attempt to set up the payment method has failed because "
        "authentication failed.",
        "payment_method": clone(pm),
        "type": "invalid_request_error",
    }
    state.emit("setup_intent.setup_failed", intent)


_CONFIRM = {
    "payment_method",
    "return_url",
    "mandate_data",
    "payment_method_options",
    "use_stripe_sdk",
    "payment_method_data",
    "confirmation_token",
}
_CREATE = _CONFIRM | {
    "customer",
    "confirm",
    "usage",
    "allowed_payment_method_types",
    "payment_method_types",
    "automatic_payment_methods",
    "description",
    "metadata",
    "single_use",
    "attach_to_self",
    "flow_directions",
    "on_behalf_of",
    "excluded_payment_method_types",
    "payment_method_configuration",
}


@router.post("/v1/setup_intents", params=_CREATE)
def create_setup_intent(ctx: Ctx) -> Json:
    """Create (and with ``confirm=true`` confirm) a SetupIntent."""
    from paydesk_sandbox.resources.payment_methods import resolve

    state, p = ctx.state, ctx.params
    customer = p.string("customer")
    if customer is not None:
        get_customer(state, customer, param="customer")
    pm_value = p.string("payment_method")
    pm_id = resolve(state, pm_value)["id"] if pm_value else None
    types = method_types_param(p)
    intent_id = state.new_id("seti")
    intent: Json = {
        "id": intent_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": (
            None if types else {"allow_redirects": "always", "enabled": True}
        ),
        "cancellation_reason": None,
        "client_secret": f"{intent_id}_secret_{state.new_id('s', 32)[2:]}",
        "created": state.now_for_customer(customer),
        "customer": customer,
        "description": p.string("description"),
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": p.metadata(),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": pm_id,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": types or ["card"],
        "single_use_mandate": None,
        "status": "requires_confirmation" if pm_id else "requires_payment_method",
        "usage": p.enum("usage", ("off_session", "on_session")) or "off_session",
    }
    state.add(intent)
    state.emit("setup_intent.created", intent)
    if p.boolean("confirm"):
        confirm_setup(state, intent, return_url=p.string("return_url"), base_url=ctx.base_url)
    return intent


@router.get("/v1/setup_intents/{id}", params={"client_secret"})
def retrieve_setup_intent(ctx: Ctx) -> Json:
    """One SetupIntent."""
    return get_setup_intent(ctx.state, ctx.path["id"])


@router.post(
    "/v1/setup_intents/{id}",
    params={
        "customer",
        "description",
        "metadata",
        "payment_method",
        "allowed_payment_method_types",
        "payment_method_types",
        "payment_method_options",
        "attach_to_self",
        "flow_directions",
    },
)
def update_setup_intent(ctx: Ctx) -> Json:
    """Update description, metadata, customer or payment method."""
    from paydesk_sandbox.resources.payment_methods import resolve

    state, p = ctx.state, ctx.params
    intent = get_setup_intent(state, ctx.path["id"])
    if "description" in p:
        intent["description"] = p.string("description")
    intent["metadata"] = p.metadata(intent["metadata"])
    customer = p.string("customer")
    if customer is not None:
        intent["customer"] = get_customer(state, customer, param="customer")["id"]
    pm_value = p.string("payment_method")
    if pm_value is not None:
        intent["payment_method"] = resolve(state, pm_value)["id"]
        intent["status"] = "requires_confirmation"
    return intent


@router.post("/v1/setup_intents/{id}/confirm", params=_CONFIRM)
def confirm_setup_intent(ctx: Ctx) -> Json:
    """Confirm a SetupIntent."""
    from paydesk_sandbox.resources.payment_methods import resolve

    state, p = ctx.state, ctx.params
    intent = get_setup_intent(state, ctx.path["id"])
    pm_value = p.string("payment_method")
    if pm_value is not None:
        intent["payment_method"] = resolve(state, pm_value)["id"]
    confirm_setup(state, intent, return_url=p.string("return_url"), base_url=ctx.base_url)
    return intent


@router.post("/v1/setup_intents/{id}/cancel", params={"cancellation_reason"})
def cancel_setup_intent(ctx: Ctx) -> Json:
    """Cancel a SetupIntent that has not succeeded."""
    state = ctx.state
    intent = get_setup_intent(state, ctx.path["id"])
    if intent["status"] not in CONFIRMABLE:
        raise unexpected_state(
            f"You cannot cancel this SetupIntent because it has a status of {intent['status']}.",
            code="setup_intent_unexpected_state",
        )
    intent["status"] = "canceled"
    intent["cancellation_reason"] = ctx.params.enum(
        "cancellation_reason", ("abandoned", "duplicate", "requested_by_customer")
    )
    state.emit("setup_intent.canceled", intent)
    return intent


@router.list(
    "/v1/setup_intents", params={"customer", "payment_method", "created", "attach_to_self"}
)
def list_setup_intents(ctx: Ctx) -> Json:
    """Newest first; filters ``customer``, ``payment_method``, ``created``."""
    items: Any = ctx.state.iter_newest_first("setup_intent")
    items = matching(ctx, items, "customer", "payment_method")
    return paginate(ctx, created_filter(ctx, items))
