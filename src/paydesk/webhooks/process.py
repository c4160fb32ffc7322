"""The worker: claim stored events, apply them, record what happened.

Claiming is a lease: one statement moves a batch of due events' ``next_attempt_at``
a few minutes ahead, writes a fresh ``lease_token`` on them and returns them
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never wait for each other;
SQLite has a single writer anyway). The batch is then applied in one transaction:
optimistically first (the batch's mirror rows loaded up front, the mirror's writes
flushed once at the end of the batch), and, if anything fails, again with a
savepoint and a flush per event; that redo reuses what the first pass re-fetched
from Stripe (one fetch per object per batch attempt, ``BatchFetcher``). On
PostgreSQL a transaction-scoped advisory lock per touched Stripe object keeps two
workers from writing one object at once (an event whose object is busy is simply
left for the next round). A worker that dies mid-batch leaves leases that expire,
and the events are claimed again; applying them twice has no further effect.

Ownership. The batch transaction reads only the rows that still carry its lease's
token and keeps them locked until it commits (``FOR NO KEY UPDATE`` on PostgreSQL,
SQLite's write lock), so no claim can take them over while the batch runs, however
long it runs. Rows another worker claimed before that (the lease had expired) are
skipped, not applied, and counted as ``lease_lost`` with a ``webhook_lease_lost``
warning. The outcome is written only where the token is still the worker's own
(``attempts`` incremented in SQL); if a row no longer matches, the whole batch is
rolled back instead of writing over the new owner. A batch that outlives its lease
without anyone claiming its events again still commits: they are still its own.

Releasing (making a batch's events due again at once when the batch failed, or
the events whose objects were busy) is retried a few times with a short backoff;
if the database stays unreachable, the release is kept and tried again before
each later claim of this worker, so the events are claimable as soon as the
database is back rather than when their lease ends. Every release, too, touches
only rows still leased to the worker.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import Engine, Table, and_, bindparam, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from paydesk.analytics import rollups
from paydesk.analytics.business import SUBSCRIPTION_EVENTS
from paydesk.billing import mirror
from paydesk.db.engine import session_factory
from paydesk.db.models import (
    Customer,
    Dispute,
    Invoice,
    Payment,
    Price,
    Product,
    Refund,
    StripeEvent,
    Subscription,
)
from paydesk.db.models.base import utcnow
from paydesk.logs import get_logger
from paydesk.settings import Settings
from paydesk.webhooks.handlers import (
    DISPUTED_CACHE,
    BatchFetcher,
    Context,
    Deferred,
    Fetcher,
    RefetchRateLimited,
    TierOf,
    gateway_fetcher,
    handler_for,
    prefetch_disputed,
)

if TYPE_CHECKING:
    from paydesk.stripe_gateway.http import Observer

log = get_logger(__name__)

DEFAULT_BATCH = 200
DEFAULT_MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 600.0
# Pauses between the attempts of a failed release (four attempts within ~1.5 s);
# after that the release waits for the worker's next round.
RELEASE_RETRY_DELAYS = (0.1, 0.4, 1.0)


# Called after each non-empty batch with its result (``committed``, ``lease_lost`` or
# ``rolled_back``), its duration in seconds and its size (the metrics layer).
BatchObserver = Callable[[str, float, int], None]


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
class _Tally(WorkerCounters):
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
class Lease:
    """A claimed batch: its events' ids, oldest first, and the claim's token.

    The token is written on the claimed rows; the worker writes them only while
    they still carry it. Falsy when nothing was due.
    """

    token: str
    ids: list[int]

    def __bool__(self) -> bool:
        return bool(self.ids)


@dataclass
class _EventRow:
    """The columns of a claimed event the worker reads and writes (not an ORM object).

    Its new state is written for the whole batch in one bulk UPDATE just before the
    commit, in the batch's transaction, instead of one UPDATE per event flushed
    along with each mirror write.
    """

    id: int
    event_id: str
    type: str
    api_version: str | None
    created: int
    object_id: str | None
    status: str
    attempts: int
    first_attempt_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None = None
    outcome: str | None = None
    processed_at: datetime | None = None
    processing_ms: float | None = None
    changed: bool = False

    def values(self, token: str) -> dict[str, Any]:
        """Parameters of ``_RECORD`` for this row (``attempts`` is counted in SQL)."""
        return {
            "b_id": self.id,
            "b_token": token,
            "b_status": self.status,
            "b_first_attempt_at": self.first_attempt_at,
            "b_next_attempt_at": self.next_attempt_at,
            "b_last_error": self.last_error,
            "b_outcome": self.outcome,
            "b_processed_at": self.processed_at,
            "b_processing_ms": self.processing_ms,
        }


_EVENT_COLUMNS = (
    StripeEvent.id,
    StripeEvent.event_id,
    StripeEvent.type,
    StripeEvent.api_version,
    StripeEvent.created,
    StripeEvent.object_id,
    StripeEvent.status,
    StripeEvent.attempts,
    StripeEvent.first_attempt_at,
    StripeEvent.next_attempt_at,
    StripeEvent.last_error,
    StripeEvent.outcome,
    StripeEvent.processed_at,
    StripeEvent.processing_ms,
    StripeEvent.payload,
)


_EVENTS = cast(Table, StripeEvent.__table__)

# One attempt's outcome, written only while the row is still leased to the writer;
# the attempt is counted by the database, not copied from what the worker read.
_RECORD = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("b_id"), _EVENTS.c.lease_token == bindparam("b_token"))
    .values(
        status=bindparam("b_status"),
        attempts=_EVENTS.c.attempts + 1,
        first_attempt_at=bindparam("b_first_attempt_at"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        last_error=bindparam("b_last_error"),
        outcome=bindparam("b_outcome"),
        processed_at=bindparam("b_processed_at"),
        processing_ms=bindparam("b_processing_ms"),
        lease_token=None,
    )
)


class _RetrySafely(Exception):
    """An event failed in the optimistic pass: redo the batch with savepoints."""


class _LeaseLost(Exception):
    """Some of the batch's rows are no longer leased to this worker: roll it back."""

    def __init__(self, lost: int) -> None:
        super().__init__(f"{lost} event(s) no longer leased to this worker")
        self.lost = lost


MODEL_OF_OBJECT: dict[str, type[Any]] = {
    "customer": Customer,
    "product": Product,
    "price": Price,
    "payment_intent": Payment,
    "refund": Refund,
    "dispute": Dispute,
    "subscription": Subscription,
    "invoice": Invoice,
}


def _lock_keys(event: dict[str, Any]) -> list[str]:
    # The object itself, and the payment a charge, refund or dispute folds into.
    obj = event.get("data", {}).get("object", {})
    keys = {str(obj.get("id"))}
    related = mirror.ref(obj.get("payment_intent"))
    if related:
        keys.add(related)
    return sorted(keys)


class Worker:
    """Applies stored events to the mirror. ``run_once()`` handles one batch."""

    def __init__(
        self,
        engine: Engine,
        *,
        tier_of: TierOf = lambda _price: None,
        fetcher: Fetcher | None = None,
        api_version: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Callable[[int], float] = backoff_seconds,
        name: str | None = None,
        lease: timedelta | None = None,
        batch_observer: BatchObserver | None = None,
        after_apply: Callable[[Session, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._engine = engine
        # Called with each applied event, inside its transaction (e.g. the email outbox).
        self._after_apply = after_apply
        # How long a claimed batch stays invisible to other workers: longer than a batch
        # takes, short enough that a crashed worker's batch is picked up again soon.
        self._lease = lease if lease is not None else LEASE
        self._sessions = session_factory(engine)
        self._tier_of = tier_of
        self._fetcher = fetcher
        self._api_version = api_version
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._postgres = engine.dialect.name == "postgresql"
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.counters = WorkerCounters()
        # The counters are written by the working thread and read by a metrics scrape.
        self._counters_lock = threading.Lock()
        self._batch_observer = batch_observer
        # Releases that failed (database unreachable), by lease token: retried
        # before every later claim until they go through.
        self._unreleased: dict[str, list[int]] = {}

    # -- claiming -----------------------------------------------------------------
    def _due(self) -> Any:
        now = utcnow()
        return and_(StripeEvent.status == "pending", StripeEvent.next_attempt_at <= now)

    def claim(self) -> Lease:
        """Lease a batch of due events to this worker, under a new token."""
        token = uuid.uuid4().hex
        candidates = (
            select(StripeEvent.id)
            .where(self._due())
            .order_by(StripeEvent.created, StripeEvent.id)
            .limit(self._batch_size)
        )
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(StripeEvent)
            .where(StripeEvent.id.in_(candidates.scalar_subquery()))
            .values(next_attempt_at=utcnow() + self._lease, lease_token=token)
            .returning(StripeEvent.id, StripeEvent.created)
            .execution_options(synchronize_session=False)
        )
        with self._engine.begin() as connection:
            rows = connection.execute(statement).all()
        ids = [row.id for row in sorted(rows, key=lambda row: (row.created, row.id))]
        return Lease(token, ids)

    def _release_now(self, token: str, ids: Sequence[int]) -> None:
        # Only rows still pending and still leased under ``token``: an event another
        # worker has claimed since is that worker's to release.
        with self._engine.begin() as connection:
            connection.execute(
                update(StripeEvent)
                .where(
                    StripeEvent.id.in_(ids),
                    StripeEvent.status == "pending",
                    StripeEvent.lease_token == token,
                )
                .values(next_attempt_at=utcnow(), lease_token=None)
            )

    def _release(self, token: str, ids: Sequence[int]) -> None:
        """Make the events leased under ``token`` due again now; never raises.

        Tried up to ``len(RELEASE_RETRY_DELAYS) + 1`` times with those pauses. If the
        database is still unreachable, the release is kept and retried before each
        later claim (``run_once``), so the events do not wait for their lease to end
        once the database is back.
        """
        if not ids:
            return
        for delay in (*RELEASE_RETRY_DELAYS, None):
            try:
                self._release_now(token, ids)
            except SQLAlchemyError as exc:
                error = exc
            else:
                return
            if delay is not None:
                time.sleep(delay)
        self._unreleased.setdefault(token, []).extend(ids)
        with self._counters_lock:
            self.counters.release_failures += 1
        log.warning(
            "webhook_release_failed",
            worker=self.name,
            size=len(ids),
            error_type=type(error).__name__,
        )

    def _settle_releases(self) -> None:
        """Retry the releases that failed before (once each; kept if they fail again)."""
        for token, ids in list(self._unreleased.items()):
            try:
                self._release_now(token, ids)
            except SQLAlchemyError:
                continue
            del self._unreleased[token]
            log.info("webhook_release_settled", worker=self.name, size=len(ids))

    # -- applying -----------------------------------------------------------------
    def run_once(self) -> int:
        """Claim and apply one batch; returns how many events were handled.

        Releases that failed earlier are retried first.
        """
        try:
            self._settle_releases()
            handled = self.apply(self.claim())
        except Exception:
            with self._counters_lock:
                self.counters.round_failures += 1
                self.counters.last_round_ok = False
            raise
        with self._counters_lock:
            self.counters.last_round_ok_at = time.time()
            self.counters.last_round_ok = True
        return handled

    def snapshot(self) -> WorkerCounters:
        """A consistent copy of the counters (safe from another thread)."""
        with self._counters_lock:
            return self.counters.copy()

    @property
    def unreleased(self) -> int:
        """Events whose release failed and is kept for a later attempt."""
        return sum(len(ids) for ids in list(self._unreleased.values()))

    @property
    def refetches(self) -> int:
        """Objects re-fetched from Stripe since start (0 without Stripe access)."""
        return self._fetcher.fetched if self._fetcher is not None else 0

    def _observe_batch(self, result: str, started: float, size: int) -> None:
        if self._batch_observer is not None:
            self._batch_observer(result, time.perf_counter() - started, size)

    def apply(self, lease: Lease) -> int:
        """Apply a claimed batch; returns how many of its events were handled.

        The batch is first applied optimistically: one transaction, no savepoint
        per event, the mirror rows of the whole batch loaded up front. If any
        event fails, that attempt is rolled back and the batch is applied again
        with a savepoint per event, so one bad event cannot take the others down.
        Both passes re-fetch through one ``BatchFetcher``: an object Stripe was
        asked about in the first pass (found or not) is not fetched again in the
        redo; a later attempt at the batch fetches afresh.
        Events no longer leased under ``lease.token`` are left alone (see the
        module's docstring); if the outcome cannot be written because a row
        changed hands, the batch is rolled back, nothing is counted and 0 is
        returned. Any other failure rolls the batch back, releases it and raises.
        """
        ids = lease.ids
        if not ids:
            return 0
        started = time.perf_counter()
        # This attempt's own: not shared with other workers, threads or attempts.
        fetcher = BatchFetcher(self._fetcher) if self._fetcher is not None else None
        try:
            tally = _Tally()
            try:
                with self._sessions() as session, session.begin():
                    busy = self._apply_batch(session, lease, tally, fetcher, optimistic=True)
            except _RetrySafely:
                tally = _Tally()
                with self._sessions() as session, session.begin():
                    busy = self._apply_batch(session, lease, tally, fetcher, optimistic=False)
        except _LeaseLost as lost:
            with self._counters_lock:
                self.counters.lease_lost += lost.lost
            self._observe_batch("lease_lost", started, len(ids))
            log.warning(
                "webhook_lease_lost",
                worker=self.name,
                size=len(ids),
                lost=lost.lost,
                action="batch rolled back",
            )
            self._release(lease.token, ids)
            return 0
        except Exception:
            # The whole batch rolled back (e.g. a lost connection): make it due again.
            log.exception("webhook_batch_rolled_back", size=len(ids))
            self._observe_batch("rolled_back", started, len(ids))
            self._release(lease.token, ids)
            raise
        finally:
            if fetcher is not None:
                fetcher.clear()
        with self._counters_lock:
            tally.add_to(self.counters)
        self._observe_batch("committed", started, len(ids))
        if tally.lease_lost:
            log.warning(
                "webhook_lease_lost",
                worker=self.name,
                size=len(ids),
                lost=tally.lease_lost,
                action="events skipped",
            )
        self._release(lease.token, busy)
        return len(ids) - len(busy) - tally.lease_lost

    def _lock(self, session: Session, payloads: dict[int, dict[str, Any]]) -> set[int]:
        """Take the advisory locks of every event's objects; the events found busy."""
        if not self._postgres:
            return set()
        keys_of = {pk: _lock_keys(payload) for pk, payload in payloads.items()}
        keys = sorted({key for keys in keys_of.values() for key in keys})
        refused = set(
            session.execute(
                text(
                    "SELECT k FROM unnest(CAST(:keys AS text[])) AS k "
                    "WHERE NOT pg_try_advisory_xact_lock(hashtextextended(k, 0))"
                ),
                {"keys": keys},
            ).scalars()
        )
        return {pk for pk, keys in keys_of.items() if refused.intersection(keys)}

    def _prefetch(self, session: Session, payloads: dict[int, dict[str, Any]]) -> None:
        """Load the batch's mirror rows in one query per table into the session's cache."""
        wanted: dict[type[Any], set[str]] = {}
        for payload in payloads.values():
            obj = payload.get("data", {}).get("object", {})
            model = MODEL_OF_OBJECT.get(str(obj.get("object")))
            if model is not None and obj.get("id"):
                wanted.setdefault(model, set()).add(str(obj["id"]))
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

    def _apply_batch(
        self,
        session: Session,
        lease: Lease,
        tally: _Tally,
        fetcher: BatchFetcher | None,
        *,
        optimistic: bool,
    ) -> list[int]:
        ids = lease.ids
        events: dict[int, _EventRow] = {}
        payloads: dict[int, dict[str, Any]] = {}
        # Only the rows still leased to us, locked until the commit: no claim can take
        # them over meanwhile (SKIP LOCKED passes them by; on SQLite this transaction
        # holds the write lock). Rows claimed again after our lease ran out are not
        # ours any more: left to their new owner.
        query = select(*_EVENT_COLUMNS).where(
            StripeEvent.id.in_(ids), StripeEvent.lease_token == lease.token
        )
        if self._postgres:
            query = query.with_for_update(key_share=True)
        for found in session.execute(query):
            *columns, payload = found
            row = _EventRow(*columns)
            events[row.id] = row
            if row.status not in ("processed", "ignored"):
                payloads[row.id] = orjson.loads(payload)
        busy_set = self._lock(session, payloads)
        if optimistic:
            self._prefetch(session, {pk: p for pk, p in payloads.items() if pk not in busy_set})
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
            self._apply_one(session, row, payloads[event_pk], tally, fetcher, optimistic, applied)
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
        changed = [row.values(lease.token) for row in events.values() if row.changed]
        if changed:
            # One executemany (pipelined by psycopg), each row only if still ours. The
            # rows are locked, so this matches them all unless that premise broke;
            # then nothing of this batch may be committed over the new owner's work.
            written = session.connection().execute(_RECORD, changed).rowcount
            if written != len(changed):
                raise _LeaseLost(len(changed) - written)
        return busy

    def _apply_one(
        self,
        session: Session,
        row: _EventRow,
        payload: dict[str, Any],
        tally: _Tally,
        fetcher: BatchFetcher | None,
        optimistic: bool,
        applied: dict[tuple[str, int], set[int]],
    ) -> None:
        started = time.perf_counter()
        now = utcnow()
        row.changed = True
        if self._api_version and row.api_version and row.api_version != self._api_version:
            tally.other_api_version += 1
        handler = handler_for(row.type)
        if handler is None:
            self._count_attempt(row, now)
            row.status = "ignored"
            row.outcome = "no handler for this type"
            row.last_error = None
            row.processed_at = now
            row.processing_ms = (time.perf_counter() - started) * 1000
            tally.ignored += 1
            tally.count(row.type, "ignored")
            return
        context = Context(session, self._tier_of, fetcher, row.id, applied)
        if optimistic:
            try:
                outcome = handler(context, payload)
                if self._after_apply is not None:
                    self._after_apply(session, row.type, payload)
            except Exception as exc:
                raise _RetrySafely from exc
        else:
            try:
                with session.begin_nested():
                    outcome = handler(context, payload)
                    if self._after_apply is not None:
                        self._after_apply(session, row.type, payload)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                self._count_attempt(row, now)
                self._record_failure(row, exc, tally)
                return
        self._count_attempt(row, now)
        row.status = "processed"
        row.outcome = outcome[:255]
        row.last_error = None
        row.processed_at = utcnow()
        row.processing_ms = (time.perf_counter() - started) * 1000
        tally.processed += 1
        tally.outcomes[outcome] = tally.outcomes.get(outcome, 0) + 1
        tally.count(row.type, "applied")

    @staticmethod
    def _count_attempt(row: _EventRow, now: datetime) -> None:
        # The local count decides parking; the stored one is incremented by _RECORD.
        row.first_attempt_at = row.first_attempt_at or now
        row.attempts += 1

    def _record_failure(self, row: _EventRow, exc: Exception, tally: _Tally) -> None:
        # Retrying events stay ``pending`` (with their error) until the limit parks them
        # as ``failed``; ``paydesk events replay --failed`` brings parked ones back.
        message = f"{type(exc).__name__}: {exc}"[:2000]
        row.last_error = message
        row.outcome = None
        if isinstance(exc, RefetchRateLimited):
            # Waiting for the rate limit says nothing about the event: no parking, and
            # a short wait (a token frees up every 1/rate seconds).
            row.next_attempt_at = utcnow() + timedelta(seconds=random.uniform(0.5, 3.0))  # noqa: S311
            tally.count(row.type, "failed")
            log.info("webhook_event_failed", event_id=row.event_id, type=row.type, error=message)
        elif row.attempts >= self._max_attempts:
            row.status = "failed"
            tally.parked += 1
            tally.count(row.type, "parked")
            row.next_attempt_at = utcnow()
            log.error("webhook_event_parked", event_id=row.event_id, type=row.type, error=message)
        else:
            row.next_attempt_at = utcnow() + timedelta(seconds=self._backoff(row.attempts))
            tally.count(row.type, "failed")
            level = log.info if isinstance(exc, Deferred) else log.warning
            level("webhook_event_failed", event_id=row.event_id, type=row.type, error=message)
        tally.failed += 1

    # -- loops ----------------------------------------------------------------------
    def drain(self, *, timeout: float = 60.0) -> int:
        """Apply batches until nothing is due (or ``timeout``); returns events handled."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            handled = self.run_once()
            total += handled
            if handled == 0 and not self._has_due():
                break
        return total

    def _has_due(self) -> bool:
        with self._sessions() as session:
            count = session.scalar(select(func.count()).select_from(StripeEvent).where(self._due()))
        return bool(count)

    def run(self, stop: threading.Event, *, idle_seconds: float = 0.5) -> None:
        """Work until ``stop`` is set, polling every ``idle_seconds`` when idle."""
        log.info("webhook_worker_started", worker=self.name)
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep working; the batch was released
                log.warning("webhook_worker_round_failed", error_type=type(exc).__name__)
                handled = 0
                stop.wait(idle_seconds)
            if handled == 0:
                stop.wait(idle_seconds)
        # A release that failed in the last rounds gets one more chance on the way out.
        self._settle_releases()
        log.info("webhook_worker_stopped", worker=self.name)


def build_worker(
    settings: Settings,
    engine: Engine,
    *,
    observers: Sequence[Observer] = (),
    **options: Any,
) -> Worker:
    """The worker for ``settings``: tier prices from settings, re-fetching when a key is set.

    ``observers`` see every HTTP attempt of the worker's Stripe gateway (metrics).
    """
    from paydesk.billing.tiers import tier_resolver
    from paydesk.mail.outbox import pay_link_notice
    from paydesk.stripe_gateway import build_gateway, pinned_api_version

    fetcher = None
    if settings.stripe_secret_key is not None:
        # The fetch happens inside the batch's transaction: on SQLite that holds the
        # database's one write turn, so an event over the rate limit is deferred at
        # once instead of waiting for a token there.
        fetcher = gateway_fetcher(
            build_gateway(settings, observers=list(observers)),
            max_wait=0.0 if engine.dialect.name == "sqlite" else 2.0,
        )
    return Worker(
        engine,
        tier_of=tier_resolver(settings),
        fetcher=fetcher,
        api_version=pinned_api_version(),
        after_apply=options.pop("after_apply", pay_link_notice(settings)),
        **options,
    )
