"""Console webhook events: list, replay."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paydesk.admin_actions import operations as operations_actions
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import (
    PREFIX,
    FormDep,
    PrincipalDep,
    action_context,
    confirm,
    form_field,
    render,
)
from paydesk.webhooks import operations

router = APIRouter()


@router.get("/events")
def events(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    type: str = "",
) -> Response:
    rows = operations.list_events(
        session, status=status[:16] or None, event_type=type[:128] or None, limit=100
    )
    return render(
        request,
        "events.html",
        {
            "rows": rows,
            "status": status,
            "type": type,
            "statuses": ("pending", "processed", "failed", "ignored"),
        },
    )


@router.post("/events/{event_id}/replay")
def replay(
    event_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    ctx = action_context(request, session, principal)
    ctx.begin(operations_actions.REPLAY_EVENT, event_id)
    row = operations.get_event(session, event_id)
    if form_field(form, "confirm") != "yes":
        return confirm(
            request,
            title="Confirm replay",
            summary=[
                f"Replay {row.event_id} ({row.type}, now {row.status}).",
                "The worker applies it again on its next pass.",
            ],
            action=f"{PREFIX}/events/{event_id}/replay",
            fields={},
            button="Replay",
        )
    operations_actions.replay_event(ctx, event_id)
    return RedirectResponse(f"{PREFIX}/events?replayed={event_id}", status_code=303)
