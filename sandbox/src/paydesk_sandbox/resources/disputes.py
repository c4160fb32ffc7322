"""``/v1/disputes``: opened by the dispute test cards, settled by test evidence.

In test mode ``evidence[uncategorized_text]=winning_evidence`` wins and
``losing_evidence`` loses (reference §6); we settle at once instead of "shortly".
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.listing import created_filter, matching, paginate
from paydesk_sandbox.resources.files import get_file
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import SandboxState, changed_attributes, clone

Json = dict[str, Any]
router = Router()

DISPUTE_FEE = 1500  # minor units; a third party measured $15 (reference §6)
EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
# The evidence fields that take the id of an uploaded file (purpose dispute_evidence).
FILE_FIELDS = frozenset(
    {
        "cancellation_policy",
        "customer_communication",
        "customer_signature",
        "duplicate_charge_documentation",
        "receipt",
        "refund_policy",
        "service_documentation",
        "shipping_documentation",
        "uncategorized_file",
    }
)
CLOSED = frozenset({"won", "lost", "warning_closed", "prevented"})
_REASONS = {
    "fraudulent": "fraudulent",
    "inquiry": "general",
    "product_not_received": "product_not_received",
}


def is_inquiry(dispute: Json) -> bool:
    """Inquiries move no money and end as ``warning_closed``."""
    return bool(dispute["status"].startswith("warning_"))


def _balance_transaction(state: SandboxState, dispute: Json, amount: int, fee: int) -> Json:
    from paydesk_sandbox.resources.balance import book

    verb = "withdrawal" if amount < 0 else "reversal"
    return book(
        state,
        amount=amount,
        currency=dispute["currency"],
        source=dispute["id"],
        kind="adjustment",
        description=f"Chargeback {verb} for {dispute['charge']}",
        fee=fee,
        fee_description="Dispute fee",
    )


def open_dispute(state: SandboxState, charge: Json, kind: str) -> Json:
    """Open a dispute on ``charge`` (``kind``: fraudulent | inquiry | product_not_received)."""
    inquiry = kind == "inquiry"
    now = state.now()
    card = charge["payment_method_details"]["card"]
    dispute: Json = {
        "id": state.new_id("dp"),
        "object": "dispute",
        "amount": charge["amount"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "evidence": {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": now + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "enhanced_eligibility": {},
        },
        "is_charge_refundable": inquiry,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": card["brand"],
                "case_type": "inquiry" if inquiry else "chargeback",
                "network_reason_code": "10.4" if kind == "fraudulent" else "13.1",
                "network": card["network"],
            },
            "type": "card",
        },
        "reason": _REASONS.get(kind, "general"),
        "status": "warning_needs_response" if inquiry else "needs_response",
        "enhanced_eligibility_types": [],
    }
    state.add(dispute)
    charge["disputed"] = True
    state.emit("charge.dispute.created", dispute)
    if not inquiry:
        _withdraw(state, dispute)
    return dispute


def _withdraw(state: SandboxState, dispute: Json) -> None:
    dispute["balance_transactions"].append(
        _balance_transaction(state, dispute, -dispute["amount"], DISPUTE_FEE)
    )
    state.emit("charge.dispute.funds_withdrawn", dispute)


def _escalate(state: SandboxState, dispute: Json) -> None:
    """An inquiry turns into a chargeback."""
    dispute["status"] = "needs_response"
    dispute["is_charge_refundable"] = False
    dispute["payment_method_details"]["card"]["case_type"] = "chargeback"
    _withdraw(state, dispute)


def _close(state: SandboxState, dispute: Json, status: str) -> None:
    dispute["status"] = status
    dispute["is_charge_refundable"] = False
    if status == "won":
        dispute["balance_transactions"].append(
            _balance_transaction(state, dispute, dispute["amount"], 0)
        )
    state.emit("charge.dispute.closed", dispute)
    if status == "won":
        state.emit("charge.dispute.funds_reinstated", dispute)


def get_dispute(state: SandboxState, dispute_id: str) -> Json:
    """A dispute or 404."""
    return state.get("dispute", dispute_id, label="dispute")


@router.get("/v1/disputes/{id}")
def retrieve_dispute(ctx: Ctx) -> Json:
    """One dispute."""
    return get_dispute(ctx.state, ctx.path["id"])


def _check_file(state: SandboxState, file_id: str, key: str) -> None:
    """A file evidence field names an uploaded ``dispute_evidence`` file."""
    param = f"evidence[{key}]"
    upload = get_file(state, file_id, param=param)
    if upload["purpose"] != "dispute_evidence":
        raise invalid_request(
            f"The file {file_id} was uploaded with purpose '{upload['purpose']}'; "
            "dispute evidence needs purpose 'dispute_evidence'.",
            param=param,
        )


@router.post("/v1/disputes/{id}", params={"evidence", "metadata", "submit"})
def update_dispute(ctx: Ctx) -> Json:
    """Add evidence/metadata; submitting test evidence settles the dispute."""
    state, p = ctx.state, ctx.params
    dispute = get_dispute(state, ctx.path["id"])
    if dispute["status"] in CLOSED:
        raise invalid_request(
            f"This dispute is already closed (status {dispute['status']}); it cannot be updated."
        )
    evidence = p.sub("evidence")
    submit = p.boolean("submit", default=True)
    before = clone(dispute)
    if evidence is not None:
        for key in evidence.data:
            if key not in EVIDENCE_FIELDS and key != "enhanced_evidence":
                raise invalid_request(
                    f"Received unknown parameter: evidence[{key}]",
                    param=f"evidence[{key}]",
                    code="parameter_unknown",
                )
            if key in EVIDENCE_FIELDS:
                value = evidence.string(key)
                if key in FILE_FIELDS and value:
                    _check_file(state, value, key)
                dispute["evidence"][key] = value
        dispute["evidence_details"]["has_evidence"] = True
    dispute["metadata"] = p.metadata(dispute["metadata"])
    text = dispute["evidence"]["uncategorized_text"]
    if submit and evidence is not None:
        dispute["evidence_details"]["submission_count"] += 1
        dispute["status"] = "warning_under_review" if is_inquiry(dispute) else "under_review"
    state.emit("charge.dispute.updated", dispute, changed_attributes(before, dispute))
    if submit and evidence is not None:
        inquiry = is_inquiry(dispute)
        if text == "winning_evidence":
            _close(state, dispute, "warning_closed" if inquiry else "won")
        elif text == "losing_evidence":
            if inquiry:  # a lost inquiry becomes a chargeback that is then lost
                _escalate(state, dispute)
            _close(state, dispute, "lost")
        elif text == "escalate_inquiry_evidence" and inquiry:
            _escalate(state, dispute)
    return dispute


@router.post("/v1/disputes/{id}/close")
def close_dispute(ctx: Ctx) -> Json:
    """Accept the dispute: a chargeback is lost, an inquiry closes."""
    dispute = get_dispute(ctx.state, ctx.path["id"])
    if dispute["status"] in CLOSED:
        raise invalid_request(f"This dispute is already closed (status {dispute['status']}).")
    _close(ctx.state, dispute, "warning_closed" if is_inquiry(dispute) else "lost")
    return dispute


@router.list("/v1/disputes", params={"charge", "payment_intent", "created"})
def list_disputes(ctx: Ctx) -> Json:
    """Newest first; filters ``charge``, ``payment_intent``, ``created``."""
    items: Any = ctx.state.iter_newest_first("dispute")
    items = matching(ctx, items, "charge", "payment_intent")
    return paginate(ctx, created_filter(ctx, items))
