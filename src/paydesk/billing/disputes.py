"""Disputes: evidence (saved as a draft or submitted to the bank) and acceptance."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.billing.mirror import apply_dispute
from paydesk.db.models import Dispute
from paydesk.errors import Conflict, InvalidInput
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.stripe_gateway.params import DisputeUpdateParams

# The text evidence fields an operator fills in (Stripe's names); files are not handled.
TEXT_EVIDENCE = (
    "product_description",
    "customer_name",
    "customer_email_address",
    "billing_address",
    "customer_communication",
    "service_date",
    "refund_policy_disclosure",
    "cancellation_rebuttal",
    "uncategorized_text",
)
MAX_EVIDENCE_TEXT = 20_000  # Stripe's limit on a text evidence field
CLOSED = frozenset({"won", "lost", "warning_closed", "prevented", "charge_refunded"})


def _open_row(session: Session, dispute_id: str) -> Dispute | None:
    row = session.scalars(select(Dispute).where(Dispute.stripe_id == dispute_id)).first()
    if row is not None and row.status in CLOSED:
        raise Conflict(
            f"The dispute is {row.status}; it can no longer be answered.", code="dispute_closed"
        )
    return row


def submit_evidence(
    session: Session,
    gateway: StripeGateway,
    dispute_id: str,
    evidence: Mapping[str, str],
    *,
    submit: bool,
    request_key: str,
) -> Dispute:
    """Save ``evidence`` on the dispute; ``submit`` sends it to the bank (no more edits).

    Only the text fields of ``TEXT_EVIDENCE``, each at most ``MAX_EVIDENCE_TEXT``
    characters; empty fields are left out.
    """
    fields: dict[str, Any] = {}
    for key, value in evidence.items():
        if key not in TEXT_EVIDENCE:
            raise InvalidInput(f"Unknown evidence field: {key[:64]}.", field="evidence")
        if len(value) > MAX_EVIDENCE_TEXT:
            raise InvalidInput(
                f"Evidence is limited to {MAX_EVIDENCE_TEXT} characters a field.", field=key
            )
        if "\x00" in value:
            raise InvalidInput("Evidence cannot contain NUL characters.", field=key)
        if value.strip():
            fields[key] = value
    if not fields:
        raise InvalidInput("Give at least one piece of evidence.", field="evidence")
    _open_row(session, dispute_id)
    params: DisputeUpdateParams = {"evidence": fields, "submit": submit}  # type: ignore[typeddict-item]
    key = operation_key("dispute-evidence", dispute_id, request_key)
    row, _ = apply_dispute(
        session, gateway.update_dispute(dispute_id, params, key=key), int(time.time())
    )
    return row


def accept_dispute(session: Session, gateway: StripeGateway, dispute_id: str) -> Dispute:
    """Accept (close) a dispute: the customer keeps the money, the dispute is lost."""
    _open_row(session, dispute_id)
    obj = gateway.close_dispute(dispute_id, key=operation_key("dispute-close", dispute_id))
    row, _ = apply_dispute(session, obj, int(time.time()))
    return row
