"""``/v1/refunds`` (reference §4)."""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import invalid_request, parameter_missing
from paydesk_sandbox.listing import created_filter, matching, paginate
from paydesk_sandbox.money import format_amount
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import SandboxState, clone

Json = dict[str, Any]
router = Router()
REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def refundable_charge_of_intent(state: SandboxState, intent_id: str) -> Json:
    """The successful charge of a PaymentIntent, or 400 if it has none."""
    intent = state.get("payment_intent", intent_id, label="payment_intent", param="payment_intent")
    charge_id = intent["latest_charge"]
    charge = state.store("charge").get(charge_id) if charge_id else None
    if charge is None or charge["status"] != "succeeded":
        raise invalid_request(
            f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
            param="payment_intent",
        )
    return charge


def create_refund(
    state: SandboxState,
    charge: Json,
    *,
    amount: int | None = None,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Json:
    """Refund ``amount`` (default: what remains) of a captured charge.

    Raises 400 ``charge_already_refunded``, ``charge_disputed`` or an over-refund
    error (``param=amount``) as Stripe does. Emits ``charge.refunded`` and
    ``refund.created``.
    """
    charge_id = charge["id"]
    if charge["status"] != "succeeded":
        raise invalid_request(
            f"Charge {charge_id} cannot be refunded because it failed.", param="charge"
        )
    if not charge["captured"]:
        raise invalid_request(
            f"Charge {charge_id} has not been captured; cancel its PaymentIntent instead.",
            param="charge",
        )
    dispute = _open_chargeback(state, charge_id)
    if dispute is not None:
        raise invalid_request(
            f"Charge {charge_id} has been charged back; cannot issue a refund.",
            code="charge_disputed",
        )
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid_request(
            f"Charge {charge_id} has already been refunded.", code="charge_already_refunded"
        )
    if amount is None:
        amount = remaining
    if amount <= 0:
        raise invalid_request("Invalid positive integer", param="amount")
    if amount > remaining:
        currency = charge["currency"]
        raise invalid_request(
            f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded "
            f"amount on charge ({format_amount(remaining, currency)})",
            param="amount",
        )
    from paydesk_sandbox.resources.payment_methods import card_of

    pm = state.store("payment_method").get(charge["payment_method"])
    behaviour = card_of(state, pm).refund if pm is not None else None
    refund: Json = {
        "id": state.new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge_id,
        "created": state.now_for_customer(charge["customer"]),
        "currency": charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": metadata or {},
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "pending" if behaviour == "pending" else "succeeded",
        "transfer_reversal": None,
        "customer": charge["customer"],
        "customer_account": None,
        "payment_method": charge["payment_method"],
    }
    state.add(refund)
    from paydesk_sandbox.resources.balance import book

    refund["balance_transaction"] = book(
        state,
        amount=-amount,
        currency=refund["currency"],
        source=refund["id"],
        kind="refund",
        description="REFUND FOR CHARGE",
    )["id"]
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    _relist(state, charge)
    state.emit("charge.refunded", charge, {"amount_refunded": charge["amount_refunded"] - amount})
    state.emit("refund.created", refund)
    if behaviour == "pending":
        state.call_later(state.config.async_delay, lambda: _settle(state, refund["id"], ok=True))
    elif behaviour == "fail":
        state.call_later(state.config.async_delay, lambda: _settle(state, refund["id"], ok=False))
    return refund


def _open_chargeback(state: SandboxState, charge_id: str) -> Json | None:
    for dispute in state.store("dispute").values():
        if dispute["charge"] == charge_id and not dispute["is_charge_refundable"]:
            return dispute
    return None


def _relist(state: SandboxState, charge: Json) -> None:
    refunds = [r for r in state.iter_newest_first("refund") if r["charge"] == charge["id"]]
    charge["refunds"]["data"] = refunds


def _settle(state: SandboxState, refund_id: str, *, ok: bool) -> None:
    """The later status change of a refund made with an async refund test card."""
    refund = state.store("refund").get(refund_id)
    if refund is None:
        return
    before = {"status": refund["status"]}
    if ok:
        refund["status"] = "succeeded"
    else:
        refund["status"] = "failed"
        refund["failure_reason"] = "expired_or_canceled_card"
        from paydesk_sandbox.resources.balance import book

        refund["failure_balance_transaction"] = book(
            state,
            amount=refund["amount"],
            currency=refund["currency"],
            source=refund["id"],
            kind="refund_failure",
            description="REFUND FAILURE",
        )["id"]
        charge = state.store("charge").get(refund["charge"])
        if charge is not None:
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
        state.emit("refund.failed", refund, before)
    charge = state.store("charge").get(refund["charge"])
    if charge is not None:
        _relist(state, charge)
    state.emit("refund.updated", refund, before)
    state.emit("charge.refund.updated", refund, before)


@router.post(
    "/v1/refunds",
    params={
        "payment_intent",
        "charge",
        "amount",
        "reason",
        "metadata",
        "instructions_email",
        "origin",
        "refund_application_fee",
        "reverse_transfer",
        "currency",
        "customer",
    },
)
def create_refund_endpoint(ctx: Ctx) -> Json:
    """Refund a charge, given by ``charge`` or ``payment_intent``."""
    from paydesk_sandbox.resources.charges import get_charge

    p, state = ctx.params, ctx.state
    charge_id = p.string("charge")
    intent_id = p.string("payment_intent")
    amount = p.integer("amount")
    reason = p.enum("reason", REASONS)
    metadata = p.metadata()
    if charge_id is None and intent_id is None:
        raise parameter_missing("charge")
    if charge_id is not None and intent_id is not None:
        raise invalid_request(
            "You can only specify one of `charge` and `payment_intent`.", param="payment_intent"
        )
    if charge_id is not None:
        charge = get_charge(state, charge_id, param="charge")
    else:
        charge = refundable_charge_of_intent(state, str(intent_id))
    return create_refund(state, charge, amount=amount, reason=reason, metadata=metadata)


def get_refund(state: SandboxState, refund_id: str) -> Json:
    """A refund or 404."""
    return state.get("refund", refund_id, label="refund")


@router.get("/v1/refunds/{id}")
def retrieve_refund(ctx: Ctx) -> Json:
    """One refund."""
    return get_refund(ctx.state, ctx.path["id"])


@router.post("/v1/refunds/{id}", params={"metadata"})
def update_refund(ctx: Ctx) -> Json:
    """Update metadata; emits ``refund.updated`` and ``charge.refund.updated``."""
    refund = get_refund(ctx.state, ctx.path["id"])
    before = clone(refund)
    refund["metadata"] = ctx.params.metadata(refund["metadata"])
    if refund["metadata"] != before["metadata"]:
        charge = ctx.state.store("charge").get(refund["charge"])
        if charge is not None:
            _relist(ctx.state, charge)
        previous = {"metadata": before["metadata"]}
        ctx.state.emit("refund.updated", refund, previous)
        ctx.state.emit("charge.refund.updated", refund, previous)
    return refund


@router.list("/v1/refunds", params={"charge", "payment_intent", "created"})
def list_refunds(ctx: Ctx) -> Json:
    """Newest first; filters ``charge``, ``payment_intent``, ``created``."""
    items: Any = ctx.state.iter_newest_first("refund")
    items = matching(ctx, items, "charge", "payment_intent")
    return paginate(ctx, created_filter(ctx, items))


@router.list("/v1/charges/{charge}/refunds")
def list_charge_refunds(ctx: Ctx) -> Json:
    """``GET /v1/charges/{id}/refunds``."""
    from paydesk_sandbox.resources.charges import get_charge

    charge = get_charge(ctx.state, ctx.path["charge"])
    items = (r for r in ctx.state.iter_newest_first("refund") if r["charge"] == charge["id"])
    return paginate(ctx, items)
