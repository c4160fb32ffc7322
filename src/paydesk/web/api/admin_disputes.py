"""Admin API: disputes — list, detail, evidence (draft or submit), accept."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from paydesk import queries
from paydesk.admin_actions import disputes as dispute_actions
from paydesk.auth.roles import Permission
from paydesk.billing.disputes import FILE_EVIDENCE, MAX_EVIDENCE_TEXT, TEXT_EVIDENCE
from paydesk.db.models import Dispute
from paydesk.errors import NotFound
from paydesk.web.api.admin_auth import AuditFailures, ContextDep, require, require_action
from paydesk.web.api.deps import GatewayDep, IdempotencyKeyDep, SessionDep
from paydesk.web.api.pagination import CreatedGte, CreatedLt, Cursor, Limit, page_of
from paydesk.web.api.schemas import DisputeOut, Page, Strict, error_responses

router = APIRouter(
    prefix="/api/admin",
    tags=["admin: disputes"],
    dependencies=[AuditFailures, require(Permission.READ)],
)


@router.get("/disputes", summary="List disputes")
def list_disputes(
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    payment: Annotated[str | None, Query(max_length=255, description="PaymentIntent id")] = None,
    customer: Annotated[str | None, Query(max_length=255, description="Customer id")] = None,
    created_gte: CreatedGte = None,
    created_lt: CreatedLt = None,
    q: Annotated[
        str | None, Query(max_length=320, description="A dispute, payment or charge id")
    ] = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> Page[DisputeOut]:
    """Disputes, newest first, with optional filters."""
    query = queries.disputes(
        queries.DisputeFilter(
            status=status,
            reason=reason,
            payment=payment,
            customer=customer,
            created_gte=created_gte,
            created_lt=created_lt,
            q=q,
        )
    )
    return page_of(session, Dispute, query, cursor, limit, DisputeOut)


@router.get(
    "/disputes/{dispute_id}", summary="One dispute", responses=error_responses(404, 422, 503)
)
def retrieve_dispute(dispute_id: str, session: SessionDep) -> DisputeOut:
    """A dispute by id."""
    row = queries.dispute_by_id(session, dispute_id)
    if row is None:
        raise NotFound(f"No such dispute: '{dispute_id[:255]}'.", code="dispute_not_found")
    return DisputeOut.model_validate(row)


class EvidenceBody(Strict):
    """Evidence by Stripe field name (text, or an uploaded file's id for the file
    fields); ``submit`` sends it to the bank (final)."""

    evidence: dict[
        Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=MAX_EVIDENCE_TEXT)]
    ] = Field(max_length=len(TEXT_EVIDENCE) + len(FILE_EVIDENCE))
    submit: bool = False


_ACT_ERRORS = error_responses(404, 409, 422, 503)


@router.post(
    "/disputes/{dispute_id}/evidence",
    summary="Answer a dispute with evidence",
    responses=_ACT_ERRORS,
    dependencies=[require_action(dispute_actions.EVIDENCE)],
)
def evidence(
    dispute_id: str,
    body: EvidenceBody,
    ctx: ContextDep,
    gateway: GatewayDep,
    key: IdempotencyKeyDep,
) -> DisputeOut:
    """Save text evidence (``submit: false``, a draft) or submit it to the bank.

    Text fields (Stripe's names): ``product_description``, ``customer_name``,
    ``customer_email_address``, ``billing_address``, ``service_date``,
    ``refund_policy_disclosure``, ``cancellation_rebuttal``, ``uncategorized_text``.
    File fields take the id of a file uploaded to Stripe's Files API with purpose
    ``dispute_evidence`` (``file_…``): ``receipt``, ``customer_communication``,
    ``uncategorized_file``. In test mode, ``uncategorized_text`` set to
    ``winning_evidence`` wins and ``losing_evidence`` loses.
    """
    row = dispute_actions.evidence(
        ctx,
        gateway,
        dispute_id,
        body.evidence,
        submit=body.submit,
        request_key=key or uuid.uuid4().hex,
    )
    return DisputeOut.model_validate(row)


@router.post(
    "/disputes/{dispute_id}/close",
    summary="Accept a dispute",
    responses=_ACT_ERRORS,
    dependencies=[require_action(dispute_actions.CLOSE)],
)
def close(dispute_id: str, ctx: ContextDep, gateway: GatewayDep) -> DisputeOut:
    """Accept the dispute: it closes as lost and the customer keeps the money."""
    return DisputeOut.model_validate(dispute_actions.close(ctx, gateway, dispute_id))
