"""Console disputes: list and CSV export."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from paydesk import queries
from paydesk.db.models import Dispute
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
