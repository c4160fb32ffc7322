"""Admin API: disputes (read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from paydesk import queries
from paydesk.auth.roles import Permission
from paydesk.db.models import Dispute
from paydesk.errors import NotFound
from paydesk.web.api.admin_auth import AuditFailures, require
from paydesk.web.api.deps import SessionDep
from paydesk.web.api.pagination import CreatedGte, CreatedLt, Cursor, Limit, page_of
from paydesk.web.api.schemas import DisputeOut, Page, error_responses

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
