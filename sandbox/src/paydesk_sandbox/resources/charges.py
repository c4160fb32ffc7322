"""``/v1/charges``: made by PaymentIntent confirmation, read-only over the API."""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.cards import Decline
from paydesk_sandbox.listing import created_filter, matching, paginate
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import SandboxState, clone

Json = dict[str, Any]
router = Router()


def new_charge(
    state: SandboxState, intent: Json, pm: Json, *, decline: Decline | None, capture: bool
) -> Json:
    """Store the Charge of one confirmation attempt of ``intent`` with ``pm``.

    ``decline`` set → a failed charge; else succeeded, captured when ``capture``.
    """
    charge_id = state.new_id("ch")
    ok = decline is None
    card = pm["card"]
    amount = intent["amount"]
    charge: Json = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if ok and capture else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": clone(pm["billing_details"]),
        "calculated_statement_descriptor": "PAYDESK SANDBOX",
        "captured": ok and capture,
        "created": state.now_for_customer(intent["customer"]),
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": _outcome(decline),
        "paid": ok,
        "payment_intent": intent["id"],
        "payment_method": pm["id"],
        "payment_method_details": {"card": _card_details(card, amount), "type": "card"},
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/sandbox_{charge_id}",
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/charges/{charge_id}/refunds",
        },
        "review": None,
        "shipping": intent["shipping"],
        "source": None,
        "source_transfer": None,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": "succeeded" if ok else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }
    state.add(charge)
    if ok and capture:
        from paydesk_sandbox.resources.balance import book_charge

        charge["balance_transaction"] = book_charge(state, charge)
    return charge


def _outcome(decline: Decline | None) -> Json:
    if decline is None:
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "advice_code": "try_again_later" if decline.code == "processing_error" else None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": decline.decline_code,
        "seller_message": "The bank did not return any further details with this decline.",
        "type": "issuer_declined",
    }


def _card_details(card: Json, amount: int) -> Json:
    return {
        "amount_authorized": amount,
        "authorization_code": None,
        "brand": card["brand"],
        "checks": dict(card["checks"]),
        "country": card["country"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"],
        "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"},
        "installments": None,
        "last4": card["last4"],
        "mandate": None,
        "multicapture": {"status": "unavailable"},
        "network": card["brand"],
        "network_token": {"used": False},
        "network_transaction_id": None,
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": "unregulated",
        "three_d_secure": None,
        "transaction_link_id": None,
        "wallet": None,
    }


def get_charge(state: SandboxState, charge_id: str, param: str = "id") -> Json:
    """A charge or 404 ``No such charge``."""
    return state.get("charge", charge_id, label="charge", param=param)


@router.get("/v1/charges/{id}")
def retrieve_charge(ctx: Ctx) -> Json:
    """One charge."""
    return get_charge(ctx.state, ctx.path["id"])


@router.post(
    "/v1/charges/{id}",
    params={
        "description",
        "metadata",
        "receipt_email",
        "shipping",
        "fraud_details",
        "transfer_group",
    },
)
def update_charge(ctx: Ctx) -> Json:
    """Update description, metadata or receipt_email; emits ``charge.updated``."""
    charge = get_charge(ctx.state, ctx.path["id"])
    p = ctx.params
    previous: Json = {}
    for key in ("description", "receipt_email"):
        if key in p:
            previous[key] = charge[key]
            charge[key] = p.string(key)
    if "metadata" in p:
        previous["metadata"] = charge["metadata"]
        charge["metadata"] = p.metadata(charge["metadata"])
    ctx.state.emit("charge.updated", charge, previous)
    return charge


@router.list("/v1/charges", params={"customer", "payment_intent", "created", "transfer_group"})
def list_charges(ctx: Ctx) -> Json:
    """Newest first; filters ``customer``, ``payment_intent``, ``created``."""
    items: Any = ctx.state.iter_newest_first("charge")
    items = matching(ctx, items, "customer", "payment_intent")
    return paginate(ctx, created_filter(ctx, items))


CHARGE_SEARCH_FIELDS = frozenset(
    {
        "amount",
        "billing_details.address.postal_code",
        "created",
        "currency",
        "customer",
        "disputed",
        "metadata",
        "payment_method_details.card.last4",
        "refunded",
        "status",
        "payment_intent",
    }
)


@router.get("/v1/charges/search", params={"query", "limit", "page"})
def search_charges(ctx: Ctx) -> Json:
    """``query=disputed:'true'`` etc."""
    from paydesk_sandbox.search import search

    items = ctx.state.iter_newest_first("charge")
    return search(ctx, items, CHARGE_SEARCH_FIELDS, "charges")
