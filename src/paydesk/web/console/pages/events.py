"""Console webhook events: list, replay."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paydesk.auth import actions
from paydesk.auth.roles import Permission
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import (
    PREFIX,
    FormDep,
    PrincipalDep,
    action_context,
    attempt,
    confirm,
    form_field,
    need,
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
    attempt(request, "event.replay", event_id)
    need(request, principal, Permission.EVENTS_REPLAY)
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
    actions.replay_event(action_context(request, session, principal), event_id)
    return RedirectResponse(f"{PREFIX}/events?replayed={event_id}", status_code=303)
