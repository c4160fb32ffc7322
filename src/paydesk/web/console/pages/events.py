"""Console webhook events: list (newest first, with older pages), CSV export, detail
(payload and failed attempts), replay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from paydesk import queries
from paydesk.admin_actions import operations as operations_actions
from paydesk.db.models.events import MAX_ATTEMPTS_KEPT
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import (
    PREFIX,
    FormDep,
    PrincipalDep,
    action_context,
    confirm,
    csv_response,
    form_field,
    render,
)
from paydesk.webhooks import operations

router = APIRouter()


STATUSES = ("pending", "processed", "failed", "ignored")
PAGE = 50
COLUMNS = ("id", "type", "created", "object", "status", "attempts", "outcome", "last_error")


@router.get("/events")
def events(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    type: str = "",
    cursor: str | None = None,
) -> Response:
    filters = queries.EventFilter(status=status[:16] or None, type=type[:128] or None)
    rows, older = queries.events(session, filters, cursor=cursor or None, limit=PAGE)
    return render(
        request,
        "events.html",
        {
            "rows": rows,
            "status": status,
            "type": type,
            "statuses": STATUSES,
            "next_cursor": older,
        },
    )


@router.get("/events.csv")
def events_csv(
    request: Request, session: SessionDep, principal: PrincipalDep, status: str = "", type: str = ""
) -> Response:
    filters = queries.EventFilter(status=status[:16] or None, type=type[:128] or None)

    def rows(session: Session) -> Iterator[tuple[object, ...]]:
        cursor: str | None = None
        while True:
            batch, cursor = queries.events(session, filters, cursor=cursor, limit=500)
            for e in batch:
                yield (
                    e.event_id,
                    e.type,
                    e.created,
                    e.object_id,
                    e.status,
                    e.attempts,
                    e.outcome,
                    e.last_error,
                )
            if cursor is None:
                return

    return csv_response(request, session, "events", COLUMNS, rows)


# Keys whose values are never shown, at any depth of a stored event: a PaymentIntent's
# or SetupIntent's client_secret lets its holder confirm it.
SECRET_KEYS = frozenset({"client_secret", "secret", "password", "api_key"})
MAX_SHOWN = 200_000  # characters of a payload shown on the page


def redacted(value: Any) -> Any:
    """``value`` with every secret-named key's value replaced."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if k in SECRET_KEYS and v is not None else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def pretty_payload(raw: str) -> str:
    """The stored payload, indented, secrets redacted (or a note if it is not JSON)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "(the stored payload is not valid JSON)"
    text = json.dumps(redacted(parsed), indent=2, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "\n… (cut)"


@router.get("/events/{event_id}")
def event_detail(
    event_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    row = operations.get_event(session, event_id)
    return render(
        request,
        "event.html",
        {
            "e": row,
            "payload": pretty_payload(row.payload),
            "failed_attempts": operations.failed_attempts(session, row),
            "kept": MAX_ATTEMPTS_KEPT,
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
            fields={"from": "detail"} if form_field(form, "from") == "detail" else {},
            button="Replay",
        )
    operations_actions.replay_event(ctx, event_id)
    if form_field(form, "from") == "detail":
        return RedirectResponse(f"{PREFIX}/events/{event_id}?done=replayed", status_code=303)
    return RedirectResponse(f"{PREFIX}/events?replayed={event_id}", status_code=303)
