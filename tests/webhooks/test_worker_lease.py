"""Worker leases on both databases: a stale worker never writes over the new owner,
and a release the database refused is done as soon as the database answers again."""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Any

import pytest
import structlog
from sqlalchemy import Engine, event, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from paydesk.db.models import Payment, StripeEvent
from paydesk.webhooks.process import RELEASE_RETRY_DELAYS, Lease, Worker
from tests.webhooks.support import event_dict, payment_intent
from tests.webhooks.test_process import event_row, store, worker


def payments(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(p.stripe_id, p.status) for p in session.scalars(select(Payment))]


def logged(captured: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in captured if entry["event"] == name]


class Outage:
    """The database refuses the statements of ``engine`` while it is down.

    The refusal is the driver's own ``OperationalError``, raised where the statement
    would be sent (SQLAlchemy wraps it as it wraps a real one), the way a worker
    sees a database server that stopped answering. A fault, not a database: the one
    thing these tests cannot cause on the shared PostgreSQL server or a SQLite file.
    The outage lasts a number of statements rather than seconds, so the tests do not
    depend on how fast the worker gets from one attempt to the next.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._error = engine.dialect.loaded_dbapi.OperationalError
        self._left = 0
        self.refused = 0

    def begin(self, statements: int = 1_000_000) -> None:
        """Go down; come back after refusing ``statements`` statements."""
        self._left = statements

    def __enter__(self) -> Outage:
        event.listen(self._engine, "before_cursor_execute", self._refuse)
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        event.remove(self._engine, "before_cursor_execute", self._refuse)

    def _refuse(self, *_args: Any) -> None:
        if self._left > 0:
            self._left -= 1
            self.refused += 1
            raise self._error("could not receive data from server: Connection refused")

    def end(self) -> None:
        """Come back now."""
        self._left = 0


def test_a_worker_whose_events_were_claimed_again_leaves_them_to_the_new_owner(
    engine: Engine,
) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_stale", amount=900))
    store(engine, event)
    stale = worker(engine, lease=timedelta(0))  # its lease runs out at once
    lease = stale.claim()
    owner = worker(engine)
    taken = owner.claim()  # ... and another worker claims the event again
    assert taken.ids == lease.ids
    assert taken.token != lease.token

    with structlog.testing.capture_logs() as captured:
        assert stale.apply(lease) == 0
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts, row.lease_token) == ("pending", 0, taken.token)
    assert payments(engine) == []  # not applied by the stale worker
    assert (stale.counters.processed, stale.counters.lease_lost) == (0, 1)
    [warning] = logged(captured, "webhook_lease_lost")
    assert (warning["log_level"], warning["lost"], warning["action"]) == (
        "warning",
        1,
        "events skipped",
    )
    # The stale worker did not release what is now the owner's either.
    assert worker(engine).claim().ids == []

    assert owner.apply(taken) == 1
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts, row.lease_token) == ("processed", 1, None)
    assert owner.counters.processed == 1
    assert payments(engine) == [("pi_stale", "succeeded")]


# PostgreSQL only: on SQLite the batch's transaction holds the database's write lock,
# so no claim can run while it is open, with or without the row locks.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_that_outlives_its_lease_keeps_its_events_until_it_commits(
    engine: Engine,
) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_long", amount=800))
    store(engine, event)
    other = worker(engine)
    claimed_meanwhile: list[Lease] = []

    class LongBatch(Worker):
        def _prefetch(self, session: Session, payloads: dict[int, dict[str, Any]]) -> None:
            super()._prefetch(session, payloads)
            # Mid-batch, with the lease already over: another worker looks for work.
            claimed_meanwhile.append(other.claim())

    slow = LongBatch(engine, lease=timedelta(0), backoff=lambda _attempts: 0.0)
    assert slow.run_once() == 1
    assert [lease.ids for lease in claimed_meanwhile] == [[]]
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts, row.lease_token) == ("processed", 1, None)
    assert slow.counters.lease_lost == 0
    assert other.drain() == 0


def test_an_outcome_is_never_written_over_a_row_that_changed_hands(engine: Engine) -> None:
    # The rows of a running batch are locked, so nobody can claim them meanwhile;
    # should that premise ever break, the final write must still refuse to land.
    # The change of hands is made inside the batch's own transaction (any other
    # writer would wait for the batch's locks).
    event = event_dict("payment_intent.succeeded", payment_intent("pi_hands", amount=600))
    store(engine, event)

    class Overtaken(Worker):
        def _prefetch(self, session: Session, payloads: dict[int, dict[str, Any]]) -> None:
            super()._prefetch(session, payloads)
            session.execute(
                update(StripeEvent)
                .values(lease_token="f" * 32)
                .execution_options(synchronize_session=False)
            )

    overtaken = Overtaken(engine, backoff=lambda _attempts: 0.0)
    with structlog.testing.capture_logs() as captured:
        assert overtaken.run_once() == 0
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts, row.processed_at) == ("pending", 0, None)
    assert payments(engine) == []  # the batch's mirror writes were rolled back too
    assert (overtaken.counters.processed, overtaken.counters.lease_lost) == (0, 1)
    [warning] = logged(captured, "webhook_lease_lost")
    assert warning["action"] == "batch rolled back"
    # The rollback left the event leased to the worker, which released it at once.
    assert row.lease_token is None
    assert worker(engine).drain() == 1  # due now, not when the 5-minute lease ends
    assert event_row(engine, event["id"]).attempts == 1


def test_a_release_refused_by_the_database_is_retried_until_it_answers(engine: Engine) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_blip", amount=500))
    store(engine, event)
    blipped = worker(engine)  # the default lease: 5 minutes
    lease = blipped.claim()
    with Outage(engine) as outage:
        # The database goes away mid-batch, for a moment: it refuses the batch and
        # the release's first two attempts, then answers the third.
        outage.begin(statements=3)
        with pytest.raises(OperationalError):
            blipped.apply(lease)
        assert outage.refused == 3
    # The release went through once the database answered: claimable now, not in 5 min.
    assert worker(engine).claim().ids == lease.ids


def test_a_release_refused_until_the_database_is_back_is_done_by_the_next_round(
    engine: Engine,
) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_down", amount=400))
    store(engine, event)
    stranded = worker(engine)  # the default lease: 5 minutes
    lease = stranded.claim()
    with Outage(engine) as outage, structlog.testing.capture_logs() as captured:
        outage.begin()  # down mid-batch, and for longer than the release's retries
        with pytest.raises(OperationalError):
            stranded.apply(lease)
        assert outage.refused == 1 + len(RELEASE_RETRY_DELAYS) + 1  # the batch, the tries
        outage.end()
    [warning] = logged(captured, "webhook_release_failed")
    assert warning["size"] == 1
    # Back up: the events are still reserved (the release never reached the database) ...
    assert worker(engine).claim().ids == []
    # ... until the worker's next round releases them first, then claims and applies.
    assert stranded.run_once() == 1
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts) == ("processed", 1)
    assert payments(engine) == [("pi_down", "succeeded")]
