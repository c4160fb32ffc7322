"""Insert events into ``stripe_events`` once per Stripe event id, on SQLite and PostgreSQL,
and count refused deliveries in ``webhook_rejections``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, insert, select, update
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


# Distinct source addresses kept per reason and hour; further ones are counted
# together under ``OTHER_ADDRESSES`` (an attacker with an IPv6 /64 has 2^64 of them).
MAX_ADDRESSES_PER_HOUR = 200
OTHER_ADDRESSES = "(other addresses)"


def _bucket(reason: str, source: str | None, hour: datetime) -> list[ColumnElement[bool]]:
    address = (
        WebhookRejection.source_address.is_(None)
        if source is None
        else WebhookRejection.source_address == source
    )
    return [WebhookRejection.hour == hour, WebhookRejection.reason == reason, address]


def _add_to(
    connection: Connection,
    bucket: list[ColumnElement[bool]],
    *,
    body_bytes: int,
    detail: str | None,
    now: datetime,
) -> bool:
    values: dict[str, Any] = {
        "count": WebhookRejection.count + 1,
        "last_received_at": now,
        "body_bytes": case(
            (WebhookRejection.body_bytes < body_bytes, body_bytes),
            else_=WebhookRejection.body_bytes,
        ),
    }
    if detail:
        values["detail"] = detail
    result = connection.execute(update(WebhookRejection).where(*bucket).values(**values))
    return bool(getattr(result, "rowcount", 0))


def insert_rejection(
    connection: Connection,
    *,
    reason: str,
    source_address: str | None,
    body_bytes: int,
    detail: str | None = None,
    now: datetime | None = None,
) -> None:
    """Count a refused delivery (never its payload) in its (reason, address, hour) row.

    The rows a flood can write are bounded: per reason and hour at most
    ``MAX_ADDRESSES_PER_HOUR`` addresses, plus one for the rest. Two first refusals
    of a bucket racing on PostgreSQL may each insert a row; readers sum ``count``,
    so the figures stay right and the rows stay bounded by the concurrency.
    """
    now = now or utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    reason = reason[:64]
    source = (source_address or None) and source_address[:64]
    detail = detail[:255] if detail else None
    if _add_to(
        connection, _bucket(reason, source, hour), body_bytes=body_bytes, detail=detail, now=now
    ):
        return
    addresses = connection.scalar(
        select(func.count()).where(WebhookRejection.hour == hour, WebhookRejection.reason == reason)
    )
    if int(addresses or 0) >= MAX_ADDRESSES_PER_HOUR:
        source = OTHER_ADDRESSES
        other = _bucket(reason, source, hour)
        if _add_to(connection, other, body_bytes=body_bytes, detail=detail, now=now):
            return
    connection.execute(
        insert(WebhookRejection).values(
            received_at=now,
            last_received_at=now,
            hour=hour,
            count=1,
            reason=reason,
            source_address=source,
            body_bytes=body_bytes,
            detail=detail,
        )
    )


def rejection_total() -> ColumnElement[int]:
    """The number of refused deliveries a set of rows stands for (``sum(count)``)."""
    return func.coalesce(func.sum(WebhookRejection.count), 0)
