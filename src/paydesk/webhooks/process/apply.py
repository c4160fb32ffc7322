"""Applying a claimed batch: two passes, savepoints only when needed, and the counts.

The batch is applied in one transaction: optimistically first (the batch's mirror
rows loaded up front, the mirror's writes flushed once at the end of the batch),
and, if anything fails, again with a savepoint and a flush per event; that redo
reuses what the first pass re-fetched from Stripe (one fetch per object per batch
attempt, ``BatchFetcher``). An event whose object is busy (advisory lock held by
another worker) is left for the next round. Applying an event twice has no further
effect (``handlers``). Rows another worker claimed meanwhile are skipped, not
applied, and counted as ``lease_lost`` (see ``lease``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paydesk.analytics import rollups
from paydesk.analytics.business import SUBSCRIPTION_EVENTS
from paydesk.billing import mirror
from paydesk.db.models import Payment
from paydesk.db.models.base import utcnow
from paydesk.db.models.events import MAX_ATTEMPT_ERROR
from paydesk.logs import get_logger, redact_text
from paydesk.webhooks.handlers import (
    DISPUTED_CACHE,
    OBJECT_TYPES,
    BatchFetcher,
    Context,
    Deferred,
    Fetcher,
    RefetchRateLimited,
    TierOf,
    handler_for,
    prefetch_disputed,
)
from paydesk.webhooks.process.lease import (
    EventRow,
    Failure,
    Lease,
    load_leased,
    lock_busy,
    record,
)

log = get_logger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 600.0

# Called with each applied event, inside its transaction (e.g. the email outbox).
AfterApply = Callable[[Session, str, dict[str, Any]], None]
# Loads a batch's mirror rows before its optimistic pass (``prefetch``, or a test's hook).
Prefetch = Callable[[Session, dict[int, dict[str, Any]]], None]


def backoff_seconds(attempts: int) -> float:
    """Delay before attempt ``attempts + 1``: 2, 4, 8 … s capped at 10 min, jittered ±20 %."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return float(delay) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


@dataclass
class WorkerCounters:
    """Process-local counts since start (exported by ``paydesk.webhooks.metrics``).

    ``by_type`` counts committed attempts by (event type, result), the results being
    ``applied``, ``ignored``, ``failed`` (to be retried) and ``parked`` (the last
    attempt failed): ``failed`` above counts both of the last two.
    """

    processed: int = 0
    ignored: int = 0
    failed: int = 0
    parked: int = 0
    skipped_busy: int = 0
    other_api_version: int = 0
    lease_lost: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    by_type: dict[tuple[str, str], int] = field(default_factory=dict)
    # Releases given up after their retries (kept and tried again before each claim).
    release_failures: int = 0
    # Rounds (settle releases, claim, apply) that raised, and when one last completed.
    round_failures: int = 0
    last_round_ok_at: float | None = None
    last_round_ok: bool | None = None

    def count(self, event_type: str, result: str) -> None:
        """One attempt at an event of ``event_type`` ended with ``result``."""
        key = (event_type, result)
        self.by_type[key] = self.by_type.get(key, 0) + 1

    def copy(self) -> WorkerCounters:
        """An independent copy (the dictionaries too)."""
        return replace(self, outcomes=dict(self.outcomes), by_type=dict(self.by_type))


@dataclass
class Tally(WorkerCounters):
    """One batch's counts, added to the worker's once the batch is committed."""

    def add_to(self, counters: WorkerCounters) -> None:
        counters.processed += self.processed
        counters.ignored += self.ignored
        counters.failed += self.failed
        counters.parked += self.parked
        counters.skipped_busy += self.skipped_busy
        counters.other_api_version += self.other_api_version
        counters.lease_lost += self.lease_lost
        for outcome, count in self.outcomes.items():
            counters.outcomes[outcome] = counters.outcomes.get(outcome, 0) + count
        for key, count in self.by_type.items():
            counters.by_type[key] = counters.by_type.get(key, 0) + count


@dataclass(frozen=True)
class Rules:
    """How a worker applies events, fixed for one batch."""

    tier_of: TierOf
    api_version: str | None
    max_attempts: int
    backoff: Callable[[int], float]
    after_apply: AfterApply | None
    postgres: bool
    worker: str | None = None  # the worker's name, kept with each failed attempt


class _RetrySafely(Exception):
    """An event failed in the optimistic pass: redo the batch with savepoints."""


def prefetch(session: Session, payloads: dict[int, dict[str, Any]]) -> None:
    """Load the batch's mirror rows in one query per table into the session's cache."""
    wanted: dict[type[Any], set[str]] = {}
    for payload in payloads.values():
        obj = payload.get("data", {}).get("object", {})
        object_type = OBJECT_TYPES.get(str(obj.get("object")))
        if object_type is not None and obj.get("id"):
            wanted.setdefault(object_type.model, set()).add(str(obj["id"]))
    # Payments first mirrored in this batch look up disputes that arrived before them.
    prefetch_disputed(session, wanted.get(Payment, set()))
    cache: dict[tuple[type[Any], str], Any] = {}
    for model, object_ids in wanted.items():
        found = {
            row.stripe_id: row
            for row in session.scalars(select(model).where(model.stripe_id.in_(object_ids)))
        }
        for object_id in object_ids:
            cache[(model, object_id)] = found.get(object_id)
    session.info[mirror.ROW_CACHE] = cache
    # Every lookup of the batch goes through that cache, so the mirror's writes can
    # wait for one flush at the end of the batch (``_apply_batch``).
    session.info[mirror.DEFER_FLUSH] = True


def apply_lease(
    sessions: sessionmaker[Session],
    lease: Lease,
    rules: Rules,
    fetcher: Fetcher | None,
    *,
    prefetch: Prefetch = prefetch,
) -> tuple[Tally, list[int]]:
    """Apply a claimed batch and commit; its counts and the events found busy.

    Optimistic first: one transaction, no savepoint per event, the mirror rows of
    the whole batch loaded up front (``prefetch``). If any event fails, that attempt
    is rolled back and the batch is applied again with a savepoint per event, so one
    bad event cannot take the others down. Both passes re-fetch through one
    ``BatchFetcher``: an object Stripe was asked about in the first pass (found or
    not) is not fetched again in the redo; a later attempt at the batch fetches
    afresh. Raises ``LeaseLost`` when the outcome cannot be written because a row
    changed hands (the batch is rolled back); any other failure propagates too.
    """
    # This attempt's own: not shared with other workers, threads or attempts.
    batch_fetcher = BatchFetcher(fetcher) if fetcher is not None else None
    try:
        tally = Tally()
        try:
            with sessions() as session, session.begin():
                busy = _apply_batch(
                    session, lease, rules, tally, batch_fetcher, prefetch, optimistic=True
                )
        except _RetrySafely:
            tally = Tally()
            with sessions() as session, session.begin():
                busy = _apply_batch(
                    session, lease, rules, tally, batch_fetcher, prefetch, optimistic=False
                )
    finally:
        if batch_fetcher is not None:
            batch_fetcher.clear()
    return tally, busy


def _apply_batch(
    session: Session,
    lease: Lease,
    rules: Rules,
    tally: Tally,
    fetcher: BatchFetcher | None,
    prefetch: Prefetch,
    *,
    optimistic: bool,
) -> list[int]:
    ids = lease.ids
    events, payloads = load_leased(session, lease, postgres=rules.postgres)
    busy_set = lock_busy(session, payloads, postgres=rules.postgres)
    if optimistic:
        prefetch(session, {pk: p for pk, p in payloads.items() if pk not in busy_set})
    busy: list[int] = []
    applied: dict[tuple[str, int], set[int]] = {}
    for event_pk in ids:
        if event_pk not in payloads:
            continue
        if event_pk in busy_set:
            busy.append(event_pk)
            tally.skipped_busy += 1
            continue
        row = events[event_pk]
        _apply_one(session, row, payloads[event_pk], rules, tally, fetcher, optimistic, applied)
        if row.status == "processed" and row.object_id is not None:
            applied.setdefault((row.object_id, row.created), set()).add(row.id)
    if optimistic:
        # The optimistic pass's mirror writes, all at once (one INSERT per table
        # and batched UPDATEs instead of a round trip per event). Whatever fails
        # here (a row inserted concurrently, a value the column refuses) fails
        # the pass like a failing event: the batch is redone with savepoints.
        try:
            session.flush()
        except Exception as exc:
            raise _RetrySafely from exc
        finally:
            session.info.pop(mirror.DEFER_FLUSH, None)
    session.info.pop(mirror.ROW_CACHE, None)
    session.info.pop(DISPUTED_CACHE, None)
    # A subscription event is part of its price history even when it left the
    # mirror row as it was (stale): the MRR rollups of its customer are redone
    # at the commit, in this transaction (paydesk.analytics.rollups).
    rollups.touch_subscriptions(
        session,
        {
            row.object_id
            for row in events.values()
            if row.changed and row.object_id and row.type in SUBSCRIPTION_EVENTS
        },
    )
    tally.lease_lost = len(ids) - len(events)
    record(session, lease, events)
    return busy


def _apply_one(
    session: Session,
    row: EventRow,
    payload: dict[str, Any],
    rules: Rules,
    tally: Tally,
    fetcher: BatchFetcher | None,
    optimistic: bool,
    applied: dict[tuple[str, int], set[int]],
) -> None:
    started = time.perf_counter()
    now = utcnow()
    row.changed = True
    if rules.api_version and row.api_version and row.api_version != rules.api_version:
        tally.other_api_version += 1
    handler = handler_for(row.type)
    if handler is None:
        _count_attempt(row, now)
        row.status = "ignored"
        row.outcome = "no handler for this type"
        row.last_error = None
        row.processed_at = now
        row.processing_ms = (time.perf_counter() - started) * 1000
        tally.ignored += 1
        tally.count(row.type, "ignored")
        return
    context = Context(session, rules.tier_of, fetcher, row.id, applied)
    if optimistic:
        try:
            outcome = handler(context, payload)
            if rules.after_apply is not None:
                rules.after_apply(session, row.type, payload)
        except Exception as exc:
            raise _RetrySafely from exc
    else:
        try:
            with session.begin_nested():
                outcome = handler(context, payload)
                if rules.after_apply is not None:
                    rules.after_apply(session, row.type, payload)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            _count_attempt(row, now)
            _record_failure(row, exc, rules, tally, now)
            return
    _count_attempt(row, now)
    row.status = "processed"
    row.outcome = outcome[:255]
    row.last_error = None
    row.processed_at = utcnow()
    row.processing_ms = (time.perf_counter() - started) * 1000
    tally.processed += 1
    tally.outcomes[outcome] = tally.outcomes.get(outcome, 0) + 1
    tally.count(row.type, "applied")


def _count_attempt(row: EventRow, now: datetime) -> None:
    # The local count decides parking; the stored one is incremented by ``record``.
    row.first_attempt_at = row.first_attempt_at or now
    row.attempts += 1


def _record_failure(
    row: EventRow, exc: Exception, rules: Rules, tally: Tally, now: datetime
) -> None:
    # Retrying events stay ``pending`` (with their error) until the limit parks them
    # as ``failed``; ``paydesk events replay --failed`` brings parked ones back.
    # Exception text may quote input: redacted like the logs before it is stored,
    # and cut after that (so a cut cannot leave a card number too short to match).
    text = str(exc)[:10_000]
    message = redact_text(f"{type(exc).__name__}: {text}")[:2000]
    row.last_error = message
    row.outcome = None
    if isinstance(exc, RefetchRateLimited):
        # Waiting for the rate limit says nothing about the event: no parking, and
        # a short wait (a token frees up every 1/rate seconds).
        row.next_attempt_at = utcnow() + timedelta(seconds=random.uniform(0.5, 3.0))  # noqa: S311
        tally.count(row.type, "failed")
        log.info("webhook_event_failed", event_id=row.event_id, type=row.type, error=message)
    elif row.attempts >= rules.max_attempts:
        row.status = "failed"
        tally.parked += 1
        tally.count(row.type, "parked")
        row.next_attempt_at = utcnow()
        log.error("webhook_event_parked", event_id=row.event_id, type=row.type, error=message)
    else:
        row.next_attempt_at = utcnow() + timedelta(seconds=rules.backoff(row.attempts))
        tally.count(row.type, "failed")
        level = log.info if isinstance(exc, Deferred) else log.warning
        level("webhook_event_failed", event_id=row.event_id, type=row.type, error=message)
    tally.failed += 1
    row.failure = Failure(
        attempt=row.attempts,
        at=now,
        worker=rules.worker[:255] if rules.worker else None,
        error_type=type(exc).__name__[:128],
        error_message=redact_text(text)[:MAX_ATTEMPT_ERROR],
        outcome="parked" if row.status == "failed" else "failed",
    )
