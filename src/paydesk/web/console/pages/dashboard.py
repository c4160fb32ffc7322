"""Console home: business metrics and charts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paydesk.web.api.deps import SessionDep
from paydesk.web.console import charts, dashboard
from paydesk.web.console.common import PrincipalDep, render

router = APIRouter()


@router.get("/")
def home(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    board = dashboard.build(session)
    charts_html = [
        charts.bar_chart(
            "MRR by month (USD)",
            board.labels,
            [charts.Series("MRR", board.mrr, "s1")],
        ),
        charts.bar_chart(
            "MRR movements (USD): new + expansion vs churn + contraction",
            board.labels,
            [
                charts.Series("New + expansion", board.new_mrr, "s2"),
                charts.Series("Churn + contraction", board.churned_mrr, "s3"),
            ],
        ),
        charts.bar_chart(
            "Payments",
            board.labels,
            [
                charts.Series("Succeeded", board.succeeded, "s2"),
                charts.Series("Failed", board.failed, "s3"),
            ],
            integer=True,
        ),
        charts.bar_chart(
            "Refunds (USD)", board.labels, [charts.Series("Refunded", board.refunded, "s4")]
        ),
        charts.bar_chart(
            "Disputes opened",
            board.labels,
            [charts.Series("Disputes", board.disputes, "s3")],
            integer=True,
        ),
    ]
    return render(request, "dashboard.html", {"board": board, "charts": charts_html})
