"""Console refunds: list, filters and CSV export."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from paydesk import queries
from paydesk.db.models import Refund
from paydesk.queries import page
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import PrincipalDep, csv_response, render

router = APIRouter()

STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")
COLUMNS = (
    "id",
    "created",
    "payment",
    "charge",
    "amount",
    "currency",
    "status",
    "reason",
    "requested_by",
    "note",
)


def _filter(status: str, customer: str, q: str) -> queries.RefundFilter:
    return queries.RefundFilter(status=status or None, customer=customer or None, q=q)


@router.get("/refunds")
def refunds(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    customer: str = "",
    q: str = "",
    cursor: str | None = None,
) -> Response:
    q = q.strip()[:320]
    customer = customer.strip()[:255]
    query = queries.refunds(_filter(status, customer, q))
    rows, next_cursor = page(session, Refund, query, cursor, 25)
    return render(
        request,
        "refunds.html",
        {
            "rows": rows,
            "next_cursor": next_cursor,
            "status": status[:32],
            "customer": customer,
            "q": q,
            "statuses": STATUSES,
        },
    )


@router.get("/refunds.csv")
def refunds_csv(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    customer: str = "",
    q: str = "",
) -> Response:
    query = queries.refunds(_filter(status, customer, q))

    def rows(session: Session) -> Iterator[tuple[object, ...]]:
        for r in queries.iter_all(session, Refund, query):
            yield (
                r.stripe_id,
                r.stripe_created,
                r.payment_intent_id,
                r.charge_id,
                r.amount,
                r.currency,
                r.status,
                r.reason,
                r.requested_by,
                r.note,
            )

    return csv_response(request, session, "refunds", COLUMNS, rows)
