"""The history of an event's failed processing attempts, on both databases: written by
the worker with the failure, redacted and cut, bounded per event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from paydesk.db.models import StripeEvent, StripeEventAttempt
from paydesk.db.models.events import MAX_ATTEMPT_ERROR, MAX_ATTEMPTS_KEPT
from paydesk.webhooks import operations
from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.process import Worker
from paydesk.webhooks.store import insert_events
from tests.webhooks.support import event_dict, payment_intent


class Flaky:
    """An ``after_apply`` hook that raises ``error`` while it is set (a failing handler)."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def __call__(self, _session: Session, _type: str, _payload: dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error


def store(engine: Engine, event: dict[str, Any]) -> None:
    with engine.begin() as connection:
        insert_events(connection, [event_from_dict(event).row()])


def event_row(engine: Engine, event_id: str) -> StripeEvent:
    with Session(engine) as session:
        return session.scalars(select(StripeEvent).where(StripeEvent.event_id == event_id)).one()


def history(engine: Engine, event_id: str) -> list[StripeEventAttempt]:
    with Session(engine) as session:
        return operations.failed_attempts(session, operations.get_event(session, event_id))


def flaky_worker(engine: Engine, flaky: Flaky, **options: Any) -> Worker:
    return Worker(engine, after_apply=flaky, backoff=lambda _attempts: 0.0, **options)


def test_two_failures_then_success_keep_both_errors_and_the_processed_outcome(
    engine: Engine,
) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_flaky", amount=700))
    store(engine, event)
    flaky = Flaky()
    worker = flaky_worker(engine, flaky, name="worker-a")
    flaky.error = RuntimeError("ledger offline for 4242 4242 4242 4242 with sk_test_abc123XYZ")
    assert worker.run_once() == 1
    after_one = event_row(engine, event["id"])
    assert (after_one.status, after_one.attempts) == ("pending", 1)
    assert after_one.last_error is not None
    assert "4242" not in after_one.last_error
    assert "sk_test_abc123XYZ" not in after_one.last_error
    assert len(history(engine, event["id"])) == 1
    flaky.error = ValueError("second failure " + "y" * 5000)
    assert worker.run_once() == 1
    flaky.error = None
    assert worker.run_once() == 1
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts, row.outcome, row.last_error) == (
        "processed",
        3,
        "applied",
        None,
    )
    first, second = history(engine, event["id"])
    assert (first.attempt, first.error_type, first.outcome, first.worker) == (
        1,
        "RuntimeError",
        "failed",
        "worker-a",
    )
    assert first.error_message == "ledger offline for [REDACTED] with [REDACTED]"
    assert (second.attempt, second.error_type, second.outcome) == (2, "ValueError", "failed")
    assert second.error_message.startswith("second failure yyy")
    assert len(second.error_message) == MAX_ATTEMPT_ERROR
    assert first.at <= second.at
    assert worker.counters.failed == 2
    assert worker.counters.processed == 1


def test_a_poison_event_keeps_only_its_newest_attempts_also_after_a_replay(
    engine: Engine,
) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_poison"))
    other = event_dict("payment_intent.succeeded", payment_intent("pi_fine"))
    store(engine, event)
    flaky = Flaky()
    rounds = MAX_ATTEMPTS_KEPT + 5
    worker = flaky_worker(engine, flaky, max_attempts=rounds)
    for n in range(1, rounds + 1):
        flaky.error = RuntimeError(f"failure {n}")
        assert worker.run_once() == 1
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts) == ("failed", rounds)
    kept = history(engine, event["id"])
    assert [a.attempt for a in kept] == list(range(6, rounds + 1))
    assert [a.error_message for a in kept] == [f"failure {n}" for n in range(6, rounds + 1)]
    assert [a.outcome for a in kept] == ["failed"] * (MAX_ATTEMPTS_KEPT - 1) + ["parked"]
    # A replay restarts the count; the oldest rows still go first.
    with Session(engine) as session, session.begin():
        operations.replay(session, event["id"])
    flaky.error = RuntimeError("after replay")
    assert worker.run_once() == 1
    kept = history(engine, event["id"])
    assert len(kept) == MAX_ATTEMPTS_KEPT
    assert [a.attempt for a in kept] == [*range(7, rounds + 1), 1]
    assert kept[-1].error_message == "after replay"
    # Another event's history is its own; a success adds no row.
    store(engine, other)
    flaky.error = None
    worker.drain()
    assert history(engine, other["id"]) == []
    assert len(history(engine, event["id"])) == MAX_ATTEMPTS_KEPT
