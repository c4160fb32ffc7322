"""Insert events into ``stripe_events`` once per Stripe event id, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from paydesk.db.models import StripeEvent, WebhookRejection
from paydesk.db.models.base import utcnow


def insert_events(connection: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert ``rows`` (``ParsedEvent.row()``), skipping ids already stored.

    Returns the event ids that were new. Runs in the caller's transaction: the
    caller commits, and only then may it acknowledge the delivery.
    """
    if not rows:
        return set()
    unique: dict[str, dict[str, Any]] = {}
    now = utcnow()
    for row in rows:
        if row["event_id"] not in unique:
            unique[row["event_id"]] = {
                **row,
                "received_at": now,
                "next_attempt_at": now,
                "status": "pending",
                "attempts": 0,
            }
    dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(StripeEvent)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(StripeEvent.event_id)
    )
    result = connection.execute(statement, list(unique.values()))
    return {str(event_id) for event_id in result.scalars().all()}


def insert_rejection(
    connection: Connection,
    *,
    reason: str,
    source_address: str | None,
    body_bytes: int,
    detail: str | None = None,
) -> None:
    """Record a refused delivery (never its payload)."""
    connection.execute(
        insert(WebhookRejection).values(
            received_at=utcnow(),
            reason=reason[:64],
            source_address=(source_address or None) and source_address[:64],
            body_bytes=body_bytes,
            detail=detail[:255] if detail else None,
        )
    )
