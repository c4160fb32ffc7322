"""Re-fetches from Stripe per batch attempt: a real worker, a real sandbox over HTTP.

A failing event makes the worker redo its batch with a savepoint per event; the redo
reuses what the first pass fetched (found or not), so one batch attempt calls Stripe
at most once per object. A later attempt fetches afresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from paydesk.db.models import Payment, StripeEvent
from paydesk.db.models.base import utcnow
from paydesk.errors import NotFound
from paydesk.settings import load_settings
from paydesk.stripe_gateway import build_gateway
from paydesk.stripe_gateway.http import StripeCall
from paydesk.stripe_gateway.triggers import run_trigger
from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.handlers import BatchFetcher, Deferred, Fetcher
from paydesk.webhooks.process import Worker, build_worker
from paydesk.webhooks.store import insert_events
from paydesk_sandbox.server import RunningSandbox, running_sandbox
from tests.webhooks.support import TEST_KEY, event_dict, payment_intent

ROUTE = "/v1/payment_intents/{id}"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox() as running:
        yield running


class Calls:
    """The worker's Stripe calls, as its gateway's observer sees them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[StripeCall] = []

    def __call__(self, call: StripeCall) -> None:
        with self._lock:
            self.seen.append(call)

    def gets(self, route: str = ROUTE) -> list[int | None]:
        with self._lock:
            return [c.status for c in self.seen if c.method == "GET" and c.route == route]


def store(engine: Engine, *events: dict[str, Any]) -> None:
    with engine.begin() as connection:
        insert_events(connection, [event_from_dict(event).row() for event in events])


def event_row(engine: Engine, event_id: str) -> StripeEvent:
    with Session(engine) as session:
        return session.scalars(select(StripeEvent).where(StripeEvent.event_id == event_id)).one()


def sandbox_worker(
    sandbox: RunningSandbox, migrated_url: str, engine: Engine, **options: Any
) -> tuple[Worker, Calls]:
    """The production worker (``build_worker``) on the sandbox, its calls observed."""
    settings = load_settings(
        {
            "PAYDESK_DATABASE_URL": migrated_url,
            "STRIPE_SECRET_KEY": TEST_KEY,
            "PAYDESK_STRIPE_API_BASE": sandbox.url,
        }
    )
    calls = Calls()
    options.setdefault("backoff", lambda _attempts: 0.0)
    return build_worker(settings, engine, observers=[calls], **options), calls


def stripe_payment(sandbox: RunningSandbox) -> str:
    """A payment intent that succeeded at the sandbox: its id."""
    gateway = build_gateway(
        load_settings({"STRIPE_SECRET_KEY": TEST_KEY, "PAYDESK_STRIPE_API_BASE": sandbox.url})
    )
    return str(run_trigger(gateway, "payment_intent.succeeded")[0].object_id)


def malformed(created: int) -> dict[str, Any]:
    """An event whose handler fails (KeyError): it forces the batch's savepoint redo."""
    return event_dict(
        "payment_intent.succeeded",
        {"id": f"pi_malformed{created}", "object": "payment_intent"},
        created=created,
    )


def test_a_redone_batch_fetches_each_object_once(
    sandbox: RunningSandbox, migrated_url: str, engine: Engine
) -> None:
    pi_id = stripe_payment(sandbox)
    now = int(time.time())
    worker, calls = sandbox_worker(sandbox, migrated_url, engine)
    store(engine, event_dict("payment_intent.succeeded", payment_intent(pi_id), created=now))
    assert worker.run_once() == 1
    assert calls.gets() == []
    # One batch: an event older than the mirror (re-fetched), then one that fails. The
    # failure comes after the re-fetch in the first pass, so the redo meets it again.
    late = event_dict(
        "payment_intent.created",
        payment_intent(pi_id, status="requires_payment_method"),
        created=now - 100,
    )
    bad = malformed(now + 1)
    store(engine, late, bad)
    assert worker.run_once() == 2
    assert event_row(engine, late["id"]).outcome == "refetched"
    failed = event_row(engine, bad["id"])
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert failed.last_error is not None
    assert failed.last_error.startswith("KeyError")
    assert calls.gets() == [200]
    assert worker.refetches == 1
    assert worker.counters.processed == 2  # the first batch's event and the late one
    assert worker.counters.failed == 1
    with Session(engine) as session:
        status = session.scalars(select(Payment.status).where(Payment.stripe_id == pi_id)).one()
    assert status == "succeeded"  # Stripe's state, not the late event's


def test_not_found_is_reused_in_the_redo_and_a_later_attempt_asks_again(
    sandbox: RunningSandbox, migrated_url: str, engine: Engine
) -> None:
    worker, calls = sandbox_worker(sandbox, migrated_url, engine, max_attempts=2)
    now = int(time.time())
    # A charge of a payment Stripe does not have: its re-fetch gets a 404 and the event
    # is deferred; the malformed event after it forces the redo.
    orphan = event_dict(
        "charge.succeeded",
        {"id": "ch_orphan_refetch", "object": "charge", "payment_intent": "pi_NotAtStripe"},
        created=now,
    )
    store(engine, orphan, malformed(now + 1))
    assert worker.run_once() == 2
    assert calls.gets() == [404]
    row = event_row(engine, orphan["id"])
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error is not None
    assert row.last_error.startswith("Deferred")
    # The next attempt is a new batch: Stripe is asked again (and still says 404).
    assert worker.run_once() == 2
    assert calls.gets() == [404, 404]
    assert worker.refetches == 2
    assert event_row(engine, orphan["id"]).status == "failed"


def test_batch_fetcher_keeps_answers_not_failures() -> None:
    asked: list[str] = []
    outage = {"on": True}
    stripe = {"pi_here": {"id": "pi_here", "status": "succeeded", "metadata": {}}}

    def retrieve(object_id: str) -> dict[str, Any]:
        asked.append(object_id)
        if outage["on"]:
            raise ConnectionError("Stripe unreachable")
        if object_id not in stripe:
            raise NotFound(f"no such payment_intent: {object_id}")
        return stripe[object_id]

    fetcher = Fetcher({"payment_intent": retrieve})
    batch = BatchFetcher(fetcher)
    with pytest.raises(ConnectionError):
        batch.fetch("payment_intent", "pi_here")
    outage["on"] = False
    found = batch.fetch("payment_intent", "pi_here")  # the failure was not kept
    assert found == stripe["pi_here"]
    assert batch.fetch("payment_intent", "pi_gone") is None
    # Answered from the batch's own copies: Stripe is not asked again, and a handler
    # changing the object it got does not change what the next one gets.
    assert found is not None
    found["metadata"]["touched"] = "yes"
    again = batch.fetch("payment_intent", "pi_here")
    assert again == {"id": "pi_here", "status": "succeeded", "metadata": {}}
    assert batch.fetch("payment_intent", "pi_gone") is None
    assert asked == ["pi_here", "pi_here", "pi_gone"]
    assert fetcher.fetched == 3
    # Another batch (another attempt, worker or thread) has answers of its own.
    other = BatchFetcher(fetcher)
    assert other.fetch("payment_intent", "pi_here") == stripe["pi_here"]
    assert asked[-1] == "pi_here"
    assert len(asked) == 4
    batch.clear()
    batch.fetch("payment_intent", "pi_gone")
    assert len(asked) == 5


def test_batch_fetcher_answers_do_not_spend_the_rate_limit() -> None:
    fetcher = Fetcher(
        {"customer": lambda object_id: {"id": object_id}}, rate=0.001, burst=1, max_wait=0
    )
    batch = BatchFetcher(fetcher)
    assert batch.fetch("customer", "cus_1") == {"id": "cus_1"}
    assert batch.fetch("customer", "cus_1") == {"id": "cus_1"}  # no token needed
    with pytest.raises(Deferred):
        batch.fetch("customer", "cus_2")  # a new object needs one: none left
    with pytest.raises(Deferred):
        batch.fetch("customer", "cus_2")  # the refusal was not kept as an answer
    assert fetcher.fetched == 1


def test_waiting_for_the_refetch_rate_limit_never_parks_an_event(
    sandbox: RunningSandbox, migrated_url: str, engine: Engine
) -> None:
    pi_id = stripe_payment(sandbox)
    now = int(time.time())
    worker, _calls = sandbox_worker(sandbox, migrated_url, engine, max_attempts=2)
    store(engine, event_dict("payment_intent.succeeded", payment_intent(pi_id), created=now))
    assert worker.run_once() == 1
    assert worker._fetcher is not None
    # No token will free up during this test: every re-fetch is refused at once.
    worker._fetcher._tokens, worker._fetcher._rate, worker._fetcher._max_wait = 0.0, 1e-9, 0.0
    late = event_dict(
        "payment_intent.created",
        payment_intent(pi_id, status="requires_payment_method"),
        created=now - 100,
    )
    store(engine, late)
    for _ in range(5):  # well past max_attempts
        with engine.begin() as connection:  # due again now (the wait is a few seconds)
            connection.execute(
                StripeEvent.__table__.update()
                .where(StripeEvent.event_id == late["id"])
                .values(next_attempt_at=utcnow())
            )
        worker.run_once()
    row = event_row(engine, late["id"])
    assert (row.status, row.attempts) == ("pending", 5)
    assert row.last_error is not None
    assert "rate limit" in row.last_error
    worker._fetcher._rate, worker._fetcher._tokens = 10.0, 5.0  # tokens again
    with engine.begin() as connection:
        connection.execute(
            StripeEvent.__table__.update()
            .where(StripeEvent.event_id == late["id"])
            .values(next_attempt_at=utcnow())
        )
    assert worker.run_once() == 1
    assert event_row(engine, late["id"]).outcome == "refetched"
