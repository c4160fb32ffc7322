"""PaymentIntents: the status machine of reference §2.

The functions here (:func:`create_intent`, :func:`confirm_intent`,
:func:`complete_authentication`, :func:`capture_intent`, :func:`cancel_intent`) are
what the billing half calls for invoice payments; the HTTP endpoints in
:mod:`paydesk_sandbox.resources.payment_intents_http` are thin wrappers around them.
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.cards import Result, card_outcome
from paydesk_sandbox.errors import (
    StripeError,
    card_error,
    invalid_request,
    unexpected_state,
)
from paydesk_sandbox.money import check_amount, check_currency
from paydesk_sandbox.params import Params
from paydesk_sandbox.resources.customer_lookup import get_customer
from paydesk_sandbox.state import SandboxState, clone

Json = dict[str, Any]

CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (*CONFIRMABLE, "requires_capture", "processing")
AUTH_FAILURE_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)


# At 2026-10-28.endive the parameter is ``allowed_payment_method_types``; the older
# ``payment_method_types`` is still accepted because the Stripe CLI's trigger fixtures
# (and code written for earlier versions) send it.
LEGACY_PARAMS = frozenset({"payment_method_types"})


def method_types_param(p: Params) -> list[str] | None:
    """``allowed_payment_method_types`` or its legacy name ``payment_method_types``."""
    return p.strings("allowed_payment_method_types") or p.strings("payment_method_types")


def get_intent(state: SandboxState, intent_id: str, param: str = "id") -> Json:
    """A PaymentIntent or 404 ``No such payment_intent``."""
    return state.get("payment_intent", intent_id, label="payment_intent", param=param)


def create_intent(
    state: SandboxState,
    *,
    amount: int,
    currency: str,
    customer: str | None = None,
    payment_method: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    capture_method: str = "automatic",
    setup_future_usage: str | None = None,
    payment_method_types: list[str] | None = None,
    receipt_email: str | None = None,
    shipping: Json | None = None,
    statement_descriptor: str | None = None,
    statement_descriptor_suffix: str | None = None,
    confirmation_method: str = "automatic",
    automatic_payment_methods: Json | None = None,
) -> Json:
    """Store a new PaymentIntent (validating amount/currency, resolving the
    customer and PaymentMethod) and emit ``payment_intent.created``.

    ``payment_method`` may be an id or a test id like ``pm_card_visa``. Without
    ``payment_method_types`` automatic payment methods are enabled, as in Stripe.
    """
    currency = check_currency(currency)
    check_amount(amount, currency)
    if customer is not None:
        get_customer(state, customer, param="customer")
    pm_id = None
    if payment_method is not None:
        from paydesk_sandbox.resources.payment_methods import resolve

        pm_id = resolve(state, payment_method)["id"]
    if payment_method_types is None and automatic_payment_methods is None:
        automatic_payment_methods = {"allow_redirects": "always", "enabled": True}
    intent_id = state.new_id("pi")
    intent: Json = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic_payment_methods,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{intent_id}_secret_{state.new_id('s', 25)[2:]}",
        "confirmation_method": confirmation_method,
        "created": state.now_for_customer(customer),
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata or {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": pm_id,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": payment_method_types or ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": shipping,
        "source": None,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": statement_descriptor_suffix,
        "status": "requires_confirmation" if pm_id else "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }
    state.add(intent)
    state.emit("payment_intent.created", intent)
    return intent


def confirm_intent(
    state: SandboxState,
    intent: Json,
    *,
    payment_method: str | None = None,
    off_session: bool = False,
    return_url: str | None = None,
    base_url: str = "http://127.0.0.1:12111",
) -> StripeError | None:
    """Attempt the payment. Returns None on success or ``requires_action``; on a
    decline returns the 402 card error (the intent is then
    ``requires_payment_method`` with ``last_payment_error``) without raising, so
    callers decide whether to raise it.

    ``off_session=True`` (renewals) turns "needs 3-D Secure" into an
    ``authentication_required`` decline. Raises 400 for an intent that cannot be
    confirmed.
    """
    from paydesk_sandbox.resources.payment_methods import resolve

    if intent["status"] not in CONFIRMABLE:
        raise unexpected_state(
            f"You cannot confirm this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may be "
            f"confirmed: {', '.join(CONFIRMABLE)}."
        )
    if payment_method is not None:
        intent["payment_method"] = resolve(state, payment_method)["id"]
    pm_id = intent["payment_method"]
    if pm_id is None:
        raise unexpected_state(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update the PaymentIntent with a payment method and then confirm it again."
        )
    pm = state.store("payment_method")[pm_id]
    if intent["customer"] is not None and pm["customer"] not in (None, intent["customer"]):
        raise invalid_request(
            f"The provided PaymentMethod {pm_id} belongs to another customer.",
            param="payment_method",
        )
    if pm["customer"] is not None and intent["customer"] is None:
        raise invalid_request(
            f"The provided PaymentMethod {pm_id} was previously used with a PaymentIntent "
            "without Customer attachment, shared with a connected account without Customer "
            "attachment, or was detached from a Customer. It may not be used again. To use a "
            "PaymentMethod multiple times, you must attach it to a Customer first.",
            param="payment_method",
        )
    if return_url is not None:
        state.private_of(intent["id"])["return_url"] = return_url
    state.private_of(intent["id"])["base_url"] = base_url
    intent["last_payment_error"] = None
    return _attempt(state, intent, pm, off_session=off_session, authenticated=False)


def _attempt(
    state: SandboxState, intent: Json, pm: Json, *, off_session: bool, authenticated: bool
) -> StripeError | None:
    from paydesk_sandbox.resources.payment_methods import card_of

    card = card_of(state, pm)
    private = state.private_of(pm["id"])
    outcome = card_outcome(
        card,
        off_session=off_session,
        set_up=bool(private.get("set_up")),
        authenticated=authenticated,
    )
    if outcome.result is Result.REQUIRES_ACTION:
        intent["status"] = "requires_action"
        intent["next_action"] = _next_action(state, intent)
        state.emit("payment_intent.requires_action", intent)
        return None
    from paydesk_sandbox.resources.charges import new_charge

    manual = intent["capture_method"] == "manual"
    charge = new_charge(state, intent, pm, decline=outcome.decline, capture=not manual)
    intent["latest_charge"] = charge["id"]
    intent["next_action"] = None
    if outcome.decline is not None:
        decline = outcome.decline
        error = card_error(
            decline.code,
            decline.message,
            decline_code=decline.decline_code,
            extra={"charge": charge["id"]},
        )
        intent["status"] = "requires_payment_method"
        intent["payment_method"] = None
        intent["last_payment_error"] = {
            "charge": charge["id"],
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": "https://stripe.com/docs/error-codes/" + decline.code.replace("_", "-"),
            "message": decline.message,
            "payment_method": clone(pm),
            "type": "card_error",
        }
        state.emit("charge.failed", charge)
        state.emit("payment_intent.payment_failed", intent)
        error.extra["payment_intent"] = clone(intent)
        error.extra["payment_method"] = pm
        return error
    _on_success(state, intent, pm, charge, manual)
    return None


def _on_success(state: SandboxState, intent: Json, pm: Json, charge: Json, manual: bool) -> None:
    from paydesk_sandbox.resources.payment_methods import attach, card_of

    if intent["customer"] is not None and intent["setup_future_usage"] is not None:
        customer = state.store("customer").get(intent["customer"])
        if customer is not None and pm["customer"] is None:
            attach(state, pm, customer)
        state.private_of(pm["id"])["set_up"] = True
    if manual:
        intent["status"] = "requires_capture"
        intent["amount_capturable"] = intent["amount"]
        state.emit("charge.succeeded", charge)
        state.emit("payment_intent.amount_capturable_updated", intent)
    else:
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        state.emit("charge.succeeded", charge)
        state.emit("payment_intent.succeeded", intent)
        dispute_kind = card_of(state, pm).dispute
        if dispute_kind is not None:
            from paydesk_sandbox.resources.disputes import open_dispute

            open_dispute(state, charge, dispute_kind)


def _next_action(state: SandboxState, intent: Json) -> Json:
    private = state.private_of(intent["id"])
    return_url = private.get("return_url")
    if return_url is not None:
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "url": f"{private['base_url']}/_sandbox/3ds/{intent['id']}",
                "return_url": return_url,
            },
        }
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "stripe_3ds2_fingerprint",
            "three_d_secure_2_source": state.new_id("src"),
            "directory_server_name": "visa",
            "merchant": "acct_sandbox",
            "server_transaction_id": state.new_id("txn3ds"),
            "three_ds_method_url": "",
            "three_ds_optimizations": "",
        },
    }


def complete_authentication(state: SandboxState, intent: Json, *, succeed: bool) -> Json:
    """Finish the 3-D Secure challenge of a ``requires_action`` intent, as the
    Complete / Fail buttons of the test page do."""
    if intent["status"] != "requires_action":
        raise unexpected_state(
            f"This PaymentIntent is not awaiting authentication (status {intent['status']})."
        )
    pm = state.store("payment_method")[intent["payment_method"]]
    if succeed:
        _attempt(state, intent, pm, off_session=False, authenticated=True)
        return intent
    intent["status"] = "requires_payment_method"
    intent["next_action"] = None
    intent["payment_method"] = None
    intent["last_payment_error"] = {
        "code": "payment_intent_authentication_failure",
        "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
        "message": AUTH_FAILURE_MESSAGE,
        "payment_method": clone(pm),
        "type": "invalid_request_error",
    }
    state.emit("payment_intent.payment_failed", intent)
    return intent


def capture_intent(state: SandboxState, intent: Json, amount: int | None = None) -> Json:
    """Capture a ``requires_capture`` intent (all or ``amount`` of it)."""
    if intent["status"] != "requires_capture":
        raise unexpected_state(
            f"This PaymentIntent could not be captured because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            "be captured: requires_capture."
        )
    to_capture = intent["amount_capturable"] if amount is None else amount
    if not 0 < to_capture <= intent["amount_capturable"]:
        raise invalid_request(
            "The amount_to_capture must be greater than zero and at most the amount capturable.",
            param="amount_to_capture",
            code="amount_too_large",
        )
    charge = state.store("charge")[intent["latest_charge"]]
    charge["captured"] = True
    charge["amount_captured"] = to_capture
    from paydesk_sandbox.resources.balance import book_charge

    charge["balance_transaction"] = book_charge(state, charge)
    intent["amount_received"] = to_capture
    intent["amount_capturable"] = 0
    intent["status"] = "succeeded"
    state.emit("charge.captured", charge)
    state.emit("payment_intent.succeeded", intent)
    return intent


def cancel_intent(state: SandboxState, intent: Json, reason: str | None = None) -> Json:
    """Cancel an intent that has not succeeded (reason e.g. ``void_invoice``)."""
    if intent["status"] not in CANCELABLE:
        raise unexpected_state(
            f"You cannot cancel this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may be "
            f"canceled: {', '.join(CANCELABLE)}."
        )
    if intent["status"] == "requires_capture":
        # Releasing an authorization: no Refund object since 2025-03-31.basil.
        charge = state.store("charge")[intent["latest_charge"]]
        charge["amount_refunded"] = charge["amount"]
        charge["refunded"] = True
        intent["amount_capturable"] = 0
    intent["status"] = "canceled"
    intent["canceled_at"] = state.now_for_customer(intent["customer"])
    intent["cancellation_reason"] = reason
    intent["next_action"] = None
    state.emit("payment_intent.canceled", intent)
    return intent
