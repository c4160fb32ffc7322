"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from paydesk.db.migrate import current_revision, head_revision, is_known_revision
from paydesk.web.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    """Answers 200 while the process runs; checks nothing else on purpose.

    ``async``: it runs on the event loop, so it never queues for a worker thread
    behind slow requests (a heavy metrics read must not fail the liveness probe).
    """
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database is reachable and at the head migration",
    responses={503: {"description": "Not ready; the body says why"}},
)
def readyz(request: Request) -> Any:
    """200 when the service can take traffic; 503 with a reason otherwise."""
    engine = request.app.state.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(engine)
    except SQLAlchemyError:
        return error_response(
            request, 503, "database_unreachable", "The database cannot be reached."
        )
    head = head_revision()
    if revision is not None and revision != head and not is_known_revision(revision):
        # A newer release migrated the database during a rolling deploy. Migrations
        # are written expand-then-contract, so this older code still works on it.
        return JSONResponse({"status": "ready", "revision": revision, "schema_ahead": True})
    if revision != head:
        return error_response(
            request,
            503,
            "migrations_pending",
            f"The database is at revision {revision or 'none'}, the code expects {head}; "
            "run `paydesk migrate`.",
            current=revision,
            expected=head,
        )
    return JSONResponse({"status": "ready", "revision": revision})
