"""Console audit log: page and CSV export."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from paydesk.auth import audit
from paydesk.auth.roles import Permission
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import PrincipalDep, need, render

router = APIRouter()


def _audit_filter(actor: str, action: str, target: str, outcome: str) -> audit.AuditFilter:
    return audit.AuditFilter(
        actor=actor[:320] or None,
        action=action[:64] or None,
        target=target[:255] or None,
        outcome=outcome if outcome in audit.OUTCOMES else None,
    )


@router.get("/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    actor: str = "",
    action: str = "",
    target: str = "",
    outcome: str = "",
    before_id: int | None = None,
) -> Response:
    need(request, principal, Permission.AUDIT_READ)
    filters = _audit_filter(actor, action, target, outcome)
    rows = audit.query(session, filters, before_id=before_id, limit=50)
    return render(
        request,
        "audit.html",
        {
            "rows": rows,
            "actor": actor,
            "action": action,
            "target": target,
            "outcome": filters.outcome or "",
            "outcomes": audit.OUTCOMES,
            "next_before": rows[-1].id if len(rows) == 50 else None,
        },
    )


@router.get("/audit.csv")
def audit_csv(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    actor: str = "",
    action: str = "",
    target: str = "",
    outcome: str = "",
) -> Response:
    need(request, principal, Permission.AUDIT_READ)
    filters = _audit_filter(actor, action, target, outcome)
    return PlainTextResponse(
        audit.to_csv(audit.iter_all(session, filters)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="paydesk-audit.csv"'},
    )
