"""Console customers: list and search."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paydesk import queries
from paydesk.db.models import Customer
from paydesk.queries import page
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import PrincipalDep, render

router = APIRouter()


@router.get("/customers")
def customers(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    q: str = "",
    cursor: str | None = None,
) -> Response:
    q = q.strip()[:320]
    query = queries.customers(queries.CustomerFilter(q=q))
    rows, next_cursor = page(session, Customer, query, cursor, 25)
    return render(request, "customers.html", {"rows": rows, "next_cursor": next_cursor, "q": q})
