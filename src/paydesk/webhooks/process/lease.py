"""Leases: which worker owns which stored events, in SQL.

Claiming is a lease: one statement moves a batch of due events' ``next_attempt_at``
a few minutes ahead, writes a fresh ``lease_token`` on them and returns them
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never wait for each other;
SQLite has a single writer anyway). A worker that dies mid-batch leaves leases
that expire, and the events are claimed again.

Ownership. The batch transaction reads only the rows that still carry its lease's
token and keeps them locked until it commits (``FOR NO KEY UPDATE`` on PostgreSQL,
SQLite's write lock: ``load_leased``), so no claim can take them over while the
batch runs, however long it runs. Rows another worker claimed before that (the
lease had expired) are not loaded. The outcome is written only where the token is
still the worker's own (``attempts`` incremented in SQL: ``record``); if a row no
longer matches, ``LeaseLost`` is raised and the caller rolls the batch back
instead of writing over the new owner. A failed attempt also adds a row to
``stripe_event_attempts`` in that transaction (the newest ``MAX_ATTEMPTS_KEPT``
per event are kept). On PostgreSQL a transaction-scoped
advisory lock per touched Stripe object (``lock_busy``) keeps two workers from
writing one object at once.

Releasing (making a batch's events due again at once when the batch failed, or
the events whose objects were busy) is retried a few times with a short backoff;
if the database stays unreachable, the release is kept and tried again before
each later claim of the worker (``Leases.settle``), so the events are claimable as
soon as the database is back rather than when their lease ends. Every release,
too, touches only rows still leased to the worker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Engine, Table, and_, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from paydesk.billing import mirror
from paydesk.db.models import StripeEvent, StripeEventAttempt
from paydesk.db.models.base import utcnow
from paydesk.db.models.events import MAX_ATTEMPTS_KEPT
from paydesk.logs import get_logger

log = get_logger(__name__)

LEASE = timedelta(minutes=5)
# Pauses between the attempts of a failed release (four attempts within ~1.5 s);
# after that the release waits for the worker's next round.
RELEASE_RETRY_DELAYS = (0.1, 0.4, 1.0)


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


class LeaseLost(Exception):
    """Some of the batch's rows are no longer leased to this worker: roll it back."""

    def __init__(self, lost: int) -> None:
        super().__init__(f"{lost} event(s) no longer leased to this worker")
        self.lost = lost


@dataclass(frozen=True)
class Failure:
    """A failed attempt, as kept in ``stripe_event_attempts`` (message redacted, cut)."""

    attempt: int
    at: datetime
    worker: str | None
    error_type: str
    error_message: str
    outcome: str  # "failed" (retried later) or "parked"


@dataclass
class EventRow:
    """The columns of a claimed event the worker reads and writes (not an ORM object).

    Its new state is written for the whole batch in one bulk UPDATE just before the
    commit, in the batch's transaction (``record``), instead of one UPDATE per event
    flushed along with each mirror write.
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
    failure: Failure | None = None

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


_ATTEMPTS = cast(Table, StripeEventAttempt.__table__)

_ADD_ATTEMPT = insert(_ATTEMPTS).values(
    stripe_event_id=bindparam("a_event"),
    attempt=bindparam("a_attempt"),
    at=bindparam("a_at"),
    worker=bindparam("a_worker"),
    error_type=bindparam("a_error_type"),
    error_message=bindparam("a_error_message"),
    outcome=bindparam("a_outcome"),
)

# Everything older than the event's newest MAX_ATTEMPTS_KEPT attempts (by id: a
# replay restarts the attempt count). Nothing when it has no more than that.
_newer = _ATTEMPTS.alias("newer")
_PRUNE_ATTEMPTS = delete(_ATTEMPTS).where(
    _ATTEMPTS.c.stripe_event_id == bindparam("a_event"),
    _ATTEMPTS.c.id
    <= (
        select(_newer.c.id)
        .where(_newer.c.stripe_event_id == bindparam("a_event"))
        .order_by(_newer.c.id.desc())
        .limit(1)
        .offset(MAX_ATTEMPTS_KEPT)
        .scalar_subquery()
    ),
)


def _due() -> Any:
    now = utcnow()
    return and_(StripeEvent.status == "pending", StripeEvent.next_attempt_at <= now)


class Leases:
    """One worker's claims and releases, and the releases it still owes."""

    def __init__(
        self,
        engine: Engine,
        *,
        name: str,
        lease: timedelta = LEASE,
    ) -> None:
        self._engine = engine
        self._name = name
        # How long a claimed batch stays invisible to other workers: longer than a batch
        # takes, short enough that a crashed worker's batch is picked up again soon.
        self._lease = lease
        self._postgres = engine.dialect.name == "postgresql"
        # Releases that failed (database unreachable), by lease token: retried
        # before every later claim until they go through.
        self._unreleased: dict[str, list[int]] = {}

    def claim(self, batch_size: int) -> Lease:
        """Lease up to ``batch_size`` due events, oldest first, under a new token."""
        token = uuid.uuid4().hex
        candidates = (
            select(StripeEvent.id)
            .where(_due())
            .order_by(StripeEvent.created, StripeEvent.id)
            .limit(batch_size)
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

    def release(self, token: str, ids: Sequence[int]) -> bool:
        """Make the events leased under ``token`` due again now; never raises.

        Tried up to ``len(RELEASE_RETRY_DELAYS) + 1`` times with those pauses. If the
        database is still unreachable, the release is kept and retried by ``settle``
        before each later claim, so the events do not wait for their lease to end once
        the database is back; then False is returned (the worker counts it).
        """
        if not ids:
            return True
        for delay in (*RELEASE_RETRY_DELAYS, None):
            try:
                self._release_now(token, ids)
            except SQLAlchemyError as exc:
                error = exc
            else:
                return True
            if delay is not None:
                time.sleep(delay)
        self._unreleased.setdefault(token, []).extend(ids)
        log.warning(
            "webhook_release_failed",
            worker=self._name,
            size=len(ids),
            error_type=type(error).__name__,
        )
        return False

    def settle(self) -> None:
        """Retry the releases that failed before (once each; kept if they fail again)."""
        for token, ids in list(self._unreleased.items()):
            try:
                self._release_now(token, ids)
            except SQLAlchemyError:
                continue
            del self._unreleased[token]
            log.info("webhook_release_settled", worker=self._name, size=len(ids))

    @property
    def unreleased(self) -> int:
        """Events whose release failed and is kept for a later attempt."""
        return sum(len(ids) for ids in list(self._unreleased.values()))

    def has_due(self, sessions: sessionmaker[Session]) -> bool:
        """Whether any event is due now (claimable by some worker)."""
        with sessions() as session:
            count = session.scalar(select(func.count()).select_from(StripeEvent).where(_due()))
        return bool(count)


def load_leased(
    session: Session, lease: Lease, *, postgres: bool
) -> tuple[dict[int, EventRow], dict[int, dict[str, Any]]]:
    """The batch's rows still leased under ``lease.token``, locked until the commit.

    Returns the rows by id, and the parsed payloads of those still to apply (not
    processed or ignored already).
    """
    events: dict[int, EventRow] = {}
    payloads: dict[int, dict[str, Any]] = {}
    # Only the rows still leased to us, locked until the commit: no claim can take
    # them over meanwhile (SKIP LOCKED passes them by; on SQLite this transaction
    # holds the write lock). Rows claimed again after our lease ran out are not
    # ours any more: left to their new owner.
    query = select(*_EVENT_COLUMNS).where(
        StripeEvent.id.in_(lease.ids), StripeEvent.lease_token == lease.token
    )
    if postgres:
        query = query.with_for_update(key_share=True)
    for found in session.execute(query):
        *columns, payload = found
        row = EventRow(*columns)
        events[row.id] = row
        if row.status not in ("processed", "ignored"):
            payloads[row.id] = orjson.loads(payload)
    return events, payloads


def record(session: Session, lease: Lease, events: dict[int, EventRow]) -> None:
    """Write the changed rows' outcomes, each only if still ours; else ``LeaseLost``."""
    changed = [row.values(lease.token) for row in events.values() if row.changed]
    if changed:
        # One executemany (pipelined by psycopg), each row only if still ours. The
        # rows are locked, so this matches them all unless that premise broke;
        # then nothing of this batch may be committed over the new owner's work.
        written = session.connection().execute(_RECORD, changed).rowcount
        if written != len(changed):
            raise LeaseLost(len(changed) - written)
    _add_failures(session, [(row.id, row.failure) for row in events.values() if row.failure])


def _add_failures(session: Session, failures: list[tuple[int, Failure]]) -> None:
    # In the batch's transaction, after its rows were found still ours: the history
    # and the event's status are committed (or rolled back) together.
    if not failures:
        return
    connection = session.connection()
    connection.execute(
        _ADD_ATTEMPT,
        [
            {
                "a_event": pk,
                "a_attempt": f.attempt,
                "a_at": f.at,
                "a_worker": f.worker,
                "a_error_type": f.error_type,
                "a_error_message": f.error_message,
                "a_outcome": f.outcome,
            }
            for pk, f in failures
        ],
    )
    connection.execute(_PRUNE_ATTEMPTS, [{"a_event": pk} for pk, _ in failures])


def _lock_keys(event: dict[str, Any]) -> list[str]:
    # The object itself, and the payment a charge, refund or dispute folds into.
    obj = event.get("data", {}).get("object", {})
    keys = {str(obj.get("id"))}
    related = mirror.ref(obj.get("payment_intent"))
    if related:
        keys.add(related)
    return sorted(keys)


def lock_busy(session: Session, payloads: dict[int, dict[str, Any]], *, postgres: bool) -> set[int]:
    """Take the advisory locks of every event's objects; the events found busy."""
    if not postgres:
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
