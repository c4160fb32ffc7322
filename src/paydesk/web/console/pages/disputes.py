"""Console disputes: list, CSV export, one dispute with its deadline and timeline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk import queries
from paydesk.db.models import Dispute, Payment
from paydesk.errors import NotFound
from paydesk.queries import page
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import PrincipalDep, csv_response, render

router = APIRouter()


@router.get("/disputes")
def disputes(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    cursor: str | None = None,
) -> Response:
    query = queries.disputes(queries.DisputeFilter(status=status))
    rows, next_cursor = page(session, Dispute, query, cursor, 25)
    return render(
        request,
        "disputes.html",
        {"rows": rows, "next_cursor": next_cursor, "status": status},
    )


COLUMNS = (
    "id",
    "created",
    "payment",
    "charge",
    "amount",
    "currency",
    "reason",
    "status",
    "evidence_due_by",
    "closed_at",
)


@router.get("/disputes.csv")
def disputes_csv(
    request: Request, session: SessionDep, principal: PrincipalDep, status: str = ""
) -> Response:
    query = queries.disputes(queries.DisputeFilter(status=status))

    def rows(session: Session) -> Iterator[tuple[object, ...]]:
        for d in queries.iter_all(session, Dispute, query):
            yield (
                d.stripe_id,
                d.stripe_created,
                d.payment_intent_id,
                d.charge_id,
                d.amount,
                d.currency,
                d.reason,
                d.status,
                d.evidence_due_by.isoformat() if d.evidence_due_by else None,
                d.closed_at.isoformat() if d.closed_at else None,
            )

    return csv_response(request, session, "disputes", COLUMNS, rows)


def due_in(due: datetime | None, now: datetime) -> str | None:
    """How long until evidence is due ("3 days 4 h"), "overdue", or None without a deadline."""
    if due is None:
        return None
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    left = due - now
    if left.total_seconds() <= 0:
        return "overdue"
    hours = int(left.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if days else f"{hours} h"


@router.get("/disputes/{dispute_id}")
def dispute_detail(
    dispute_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    row = queries.dispute_by_id(session, dispute_id)
    if row is None:
        raise NotFound(f"No such dispute: '{dispute_id[:255]}'.", code="dispute_not_found")
    payment = None
    if row.payment_intent_id:
        payment = session.scalars(
            select(Payment).where(Payment.stripe_id == row.payment_intent_id)
        ).first()
    related = [row.stripe_id, row.charge_id or "", row.payment_intent_id or ""]
    return render(
        request,
        "dispute.html",
        {
            "d": row,
            "payment": payment,
            "due_in": due_in(row.evidence_due_by, datetime.now(UTC))
            if row.closed_at is None
            else None,
            "events": queries.timeline(session, related),
        },
    )
