"""Console disputes: list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paydesk import queries
from paydesk.db.models import Dispute
from paydesk.queries import page
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import PrincipalDep, render

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
