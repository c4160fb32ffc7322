"""Operating the inbox: list, show, replay, backfill, refused deliveries, and the
numbers alerts watch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from paydesk import queries
from paydesk.db.models import StripeEvent, StripeEventAttempt, WebhookRejection
from paydesk.db.models.base import utcnow
from paydesk.errors import NotFound
from paydesk.webhooks.events import NotAnEvent, event_from_dict
from paydesk.webhooks.store import insert_events, rejection_total

BACKFILL_BATCH = 100


def list_events(
    session: Session,
    *,
    status: str | None = None,
    event_type: str | None = None,
    limit: int = 50,
) -> list[StripeEvent]:
    """The newest stored events, optionally of one status and/or type."""
    rows, _ = queries.events(
        session, queries.EventFilter(status=status, type=event_type), limit=limit
    )
    return rows


def get_event(session: Session, event_id: str) -> StripeEvent:
    """The stored event ``evt_…``; ``NotFound`` if it was never received."""
    row = session.scalars(select(StripeEvent).where(StripeEvent.event_id == event_id)).first()
    if row is None:
        raise NotFound(f"No stored event {event_id}.", field="event_id")
    return row


def failed_attempts(session: Session, event: StripeEvent) -> list[StripeEventAttempt]:
    """The event's kept failed attempts (at most ``MAX_ATTEMPTS_KEPT``), oldest first."""
    return list(
        session.scalars(
            select(StripeEventAttempt)
            .where(StripeEventAttempt.stripe_event_id == event.id)
            .order_by(StripeEventAttempt.id)
        )
    )


def replay(session: Session, event_id: str) -> StripeEvent:
    """Make one stored event due again, whatever its status (the caller commits)."""
    row = get_event(session, event_id)
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.last_error = None
    session.flush()
    return row


def replay_failed(session: Session) -> int:
    """Make every parked (failed) event due again with fresh attempts; returns how many."""
    result = session.execute(
        update(StripeEvent)
        .where(StripeEvent.status == "failed")
        .values(status="pending", attempts=0, next_attempt_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class BackfillResult:
    """How many events Stripe listed and how many of them were new here."""

    seen: int = 0
    stored: int = 0
    invalid: int = 0


def backfill(
    engine: Engine,
    events: Iterable[dict[str, Any]],
    *,
    progress: Callable[[BackfillResult], None] | None = None,
) -> BackfillResult:
    """Store the events from ``events`` (e.g. ``gateway.iter_events(...)``) that are missing.

    Idempotent: events already stored (delivered or backfilled before) are skipped
    by id. Commits every ``BACKFILL_BATCH`` events, so an interrupted run keeps
    what it stored and a rerun completes it.
    """
    result = BackfillResult()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch:
            with engine.begin() as connection:
                result.stored += len(insert_events(connection, batch))
            batch.clear()
        if progress is not None:
            progress(result)

    for event in events:
        result.seen += 1
        try:
            parsed = event_from_dict(event, orjson.dumps(event).decode())
        except NotAnEvent:
            result.invalid += 1
            continue
        batch.append(parsed.row(source="backfill"))
        if len(batch) >= BACKFILL_BATCH:
            flush()
    flush()
    return result


def since_params(since: datetime) -> dict[str, Any]:
    """``/v1/events`` list parameters for events created at or after ``since``."""
    return {"created": {"gte": int(since.timestamp())}}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``30m``, ``12h``, ``3d``, a Unix time, or an ISO date/time (UTC if naive)."""
    now = now or utcnow()
    text = value.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return now - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=now.tzinfo)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"cannot read {value!r} as a time (try 12h, 3d or 2026-11-01)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


@dataclass(frozen=True)
class RejectionCount:
    """Refused deliveries of one reason from one source address within one hour."""

    hour: datetime
    reason: str
    source_address: str | None
    count: int
    last_at: datetime
    largest_body_bytes: int


MAX_REJECTION_HOURS = 168
MAX_REJECTION_ROWS = 500


def rejection_counts(
    session: Session, *, hours: int = 24, limit: int = MAX_REJECTION_ROWS
) -> list[RejectionCount]:
    """Refused deliveries of the last ``hours`` hours (the current one included) per
    hour, reason and real source address; newest hour first, then most frequent.

    Suspicious activity the guide asks to watch (``PaydeskWebhookSignatureFailures``
    links here). Rows written before aggregation (no ``hour``) count in the hour of
    their delivery.
    """
    now = utcnow()
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    latest = func.coalesce(WebhookRejection.last_received_at, WebhookRejection.received_at)
    rows = session.execute(
        select(
            WebhookRejection.hour,
            WebhookRejection.reason,
            WebhookRejection.source_address,
            rejection_total(),
            func.min(WebhookRejection.received_at),
            func.max(latest),
            func.max(WebhookRejection.body_bytes),
        )
        .where(latest >= since)
        .group_by(WebhookRejection.hour, WebhookRejection.reason, WebhookRejection.source_address)
    ).all()
    merged: dict[tuple[datetime, str, str | None], list[Any]] = {}
    for hour, reason, address, count, first, last, largest in rows:
        start = _utc(hour or first).replace(minute=0, second=0, microsecond=0)
        key = (start, str(reason), address)
        if key in merged:
            entry = merged[key]
            entry[0] += int(count)
            entry[1] = max(entry[1], _utc(last))
            entry[2] = max(entry[2], int(largest or 0))
        else:
            merged[key] = [int(count), _utc(last), int(largest or 0)]
    counts = [
        RejectionCount(hour, reason, address, count, last, largest)
        for (hour, reason, address), (count, last, largest) in merged.items()
    ]
    counts.sort(key=lambda c: (c.hour, c.count), reverse=True)
    return counts[:limit]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class InboxStats:
    """What the webhook alerts watch."""

    by_status: dict[str, int]
    parked: int
    oldest_pending_seconds: float | None
    rejections_last_hour: dict[str, int]
    other_api_versions: dict[str, int]


def inbox_stats(session: Session, *, api_version: str | None) -> InboxStats:
    """Counts by status, parked events, the lag of the oldest due event, rejections."""
    now = utcnow()
    by_status = {
        str(status): int(count)
        for status, count in session.execute(
            select(StripeEvent.status, func.count()).group_by(StripeEvent.status)
        )
    }
    parked = by_status.get("failed", 0)
    oldest = session.scalar(
        select(func.min(StripeEvent.received_at)).where(StripeEvent.status == "pending")
    )
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    rejections = {
        str(reason): int(count)
        for reason, count in session.execute(
            select(WebhookRejection.reason, rejection_total())
            .where(
                func.coalesce(WebhookRejection.last_received_at, WebhookRejection.received_at)
                >= now - timedelta(hours=1)
            )
            .group_by(WebhookRejection.reason)
        )
    }
    versions: dict[str, int] = {}
    if api_version:
        versions = {
            str(version): int(count)
            for version, count in session.execute(
                select(StripeEvent.api_version, func.count())
                .where(StripeEvent.api_version != api_version)
                .group_by(StripeEvent.api_version)
            )
        }
    return InboxStats(
        by_status=by_status,
        parked=int(parked or 0),
        oldest_pending_seconds=(now - oldest).total_seconds() if oldest else None,
        rejections_last_hour=rejections,
        other_api_versions=versions,
    )


def iter_payloads(rows: Iterable[StripeEvent]) -> Iterator[dict[str, Any]]:
    """The stored payloads of ``rows``, decoded."""
    for row in rows:
        yield orjson.loads(row.payload)
