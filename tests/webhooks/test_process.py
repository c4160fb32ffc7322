"""The worker on both databases: apply, idempotence, order, failures, parking, claims."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from paydesk.db.models import Dispute, Payment, Refund, StripeEvent, Subscription
from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.process import Worker
from paydesk.webhooks.store import insert_events
from tests.webhooks.support import event_dict, payment_intent


def store(engine: Engine, *events: dict[str, Any]) -> None:
    with engine.begin() as connection:
        insert_events(connection, [event_from_dict(event).row() for event in events])


def event_row(engine: Engine, event_id: str) -> StripeEvent:
    with Session(engine) as session:
        return session.scalars(select(StripeEvent).where(StripeEvent.event_id == event_id)).one()


def payment(engine: Engine, pi_id: str) -> Payment:
    with Session(engine) as session:
        return session.scalars(select(Payment).where(Payment.stripe_id == pi_id)).one()


def worker(engine: Engine, **options: Any) -> Worker:
    options.setdefault("backoff", lambda _attempts: 0.0)
    return Worker(engine, **options)


def test_payment_succeeded_is_applied_and_recorded(engine: Engine) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_ok", amount=4200))
    store(engine, event)
    assert worker(engine).drain() == 1
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts, row.last_error, row.outcome) == (
        "processed",
        1,
        None,
        "applied",
    )
    assert row.processed_at is not None
    assert row.processing_ms is not None
    assert row.processing_ms >= 0
    mirrored = payment(engine, "pi_ok")
    assert (mirrored.status, mirrored.amount) == ("succeeded", 4200)


def test_applying_an_event_twice_has_no_further_effect(engine: Engine) -> None:
    created = event_dict(
        "payment_intent.created",
        payment_intent("pi_t", status="requires_payment_method"),
        created=100,
    )
    succeeded = event_dict("payment_intent.succeeded", payment_intent("pi_t"), created=200)
    store(engine, created, succeeded)
    worker(engine).drain()
    before = snapshot(engine)
    # Replay both, in the wrong order this time.
    with engine.begin() as connection:
        connection.execute(update(StripeEvent).values(status="pending"))
    store(engine, succeeded, created)  # duplicates are not stored again
    worker(engine).drain()
    assert snapshot(engine) == before
    with Session(engine) as session:
        assert len(list(session.scalars(select(StripeEvent)))) == 2
        assert len(list(session.scalars(select(Payment)))) == 1


def test_an_older_event_does_not_overwrite_a_newer_state(engine: Engine) -> None:
    succeeded = event_dict("payment_intent.succeeded", payment_intent("pi_o"), created=200)
    failed = event_dict(
        "payment_intent.payment_failed",
        payment_intent(
            "pi_o",
            status="requires_payment_method",
            last_payment_error={"code": "card_declined", "decline_code": "generic_decline"},
        ),
        created=150,
    )
    store(engine, succeeded)
    worker(engine).drain()
    store(engine, failed)
    worker(engine).drain()
    assert payment(engine, "pi_o").status == "succeeded"
    assert payment(engine, "pi_o").failure_code is None
    assert event_row(engine, failed["id"]).outcome == "stale"


def test_same_second_tie_without_stripe_access_follows_the_status_progression(
    engine: Engine,
) -> None:
    created = event_dict(
        "payment_intent.created",
        payment_intent("pi_tie", status="requires_payment_method"),
        created=300,
    )
    succeeded = event_dict("payment_intent.succeeded", payment_intent("pi_tie"), created=300)
    store(engine, succeeded)
    worker(engine).drain()
    store(engine, created)
    worker(engine).drain()
    assert payment(engine, "pi_tie").status == "succeeded"


def lifecycle(prefix: str) -> list[dict[str, Any]]:
    """A realistic history across objects, one second apart, in Stripe's order."""
    pi = f"pi_{prefix}"
    ch = f"ch_{prefix}"
    sub = f"sub_{prefix}"
    charge = {
        "id": ch,
        "object": "charge",
        "payment_intent": pi,
        "amount_refunded": 0,
        "disputed": False,
        "payment_method_details": {
            "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}
        },
    }
    subscription = {
        "id": sub,
        "object": "subscription",
        "customer": f"cus_{prefix}",
        "status": "active",
        "items": {"data": []},
    }
    refund = {
        "id": f"re_{prefix}",
        "object": "refund",
        "payment_intent": pi,
        "charge": ch,
        "amount": 500,
        "currency": "usd",
        "status": "pending",
    }
    dispute = {
        "id": f"dp_{prefix}",
        "object": "dispute",
        "payment_intent": pi,
        "charge": ch,
        "amount": 2000,
        "currency": "usd",
        "status": "needs_response",
        "reason": "fraudulent",
        "evidence_details": {"due_by": 2_000_000_000},
    }
    t = 1_000
    return [
        event_dict(
            "customer.created",
            {"id": f"cus_{prefix}", "object": "customer", "email": "a@example.com"},
            created=t,
        ),
        event_dict(
            "payment_intent.created",
            payment_intent(pi, status="requires_payment_method"),
            created=t + 1,
        ),
        event_dict("payment_intent.succeeded", payment_intent(pi, latest_charge=ch), created=t + 2),
        event_dict("charge.succeeded", charge, created=t + 2),
        event_dict("charge.refunded", {**charge, "amount_refunded": 500}, created=t + 3),
        event_dict("refund.created", refund, created=t + 3),
        event_dict("refund.updated", {**refund, "status": "succeeded"}, created=t + 4),
        event_dict("charge.dispute.created", dispute, created=t + 5),
        event_dict("charge.dispute.closed", {**dispute, "status": "lost"}, created=t + 6),
        event_dict(
            "customer.subscription.created", {**subscription, "status": "incomplete"}, created=t + 7
        ),
        event_dict("customer.subscription.updated", subscription, created=t + 8),
        event_dict(
            "customer.subscription.deleted", {**subscription, "status": "canceled"}, created=t + 9
        ),
        event_dict(
            "customer.updated",
            {"id": f"cus_{prefix}", "object": "customer", "email": "b@example.com"},
            created=t + 10,
        ),
    ]


def snapshot(engine: Engine) -> dict[str, Any]:
    """The mirror's business fields, with the per-round id prefix removed."""

    def norm(value: Any) -> Any:
        return value.split("_", 1)[0] + "_X" if isinstance(value, str) and "_r" in value else value

    with Session(engine) as session:
        return {
            "payments": sorted(
                (norm(p.stripe_id), p.status, p.amount, p.amount_refunded, p.disputed, p.card_last4)
                for p in session.scalars(select(Payment))
            ),
            "refunds": sorted(
                (norm(r.stripe_id), r.status, r.amount) for r in session.scalars(select(Refund))
            ),
            "disputes": sorted(
                (norm(d.stripe_id), d.status, d.closed_at is not None)
                for d in session.scalars(select(Dispute))
            ),
            "subscriptions": sorted(
                (norm(s.stripe_id), s.status) for s in session.scalars(select(Subscription))
            ),
        }


def clear_mirror(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in (
            "payments",
            "refunds",
            "disputes",
            "subscriptions",
            "customers",
            "stripe_events",
        ):
            connection.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608 - fixed names


def test_any_delivery_order_yields_the_in_order_mirror(engine: Engine) -> None:
    store(engine, *lifecycle("r0"))
    worker(engine).drain()
    expected = snapshot(engine)
    assert expected["payments"] == [("pi_X", "succeeded", 2000, 500, True, "4242")]
    assert expected["subscriptions"] == [("sub_X", "canceled")]
    rng = random.Random(5)
    for round_number in range(1, 6):
        clear_mirror(engine)
        events = lifecycle(f"r{round_number}")
        rng.shuffle(events)
        # Deliver and apply one at a time: the worst case for ordering. A charge
        # event that comes before its payment fails and waits for its retry.
        patient = worker(engine, backoff=lambda _attempts: 3600.0)
        for event in events:
            store(engine, event)
            patient.drain()
        # The backoff elapses: the waiting events are retried.
        with engine.begin() as connection:
            connection.execute(
                update(StripeEvent)
                .where(StripeEvent.last_error.is_not(None))
                .values(next_attempt_at=StripeEvent.received_at)
            )
        patient.drain()
        assert snapshot(engine) == expected, f"round {round_number}"


def test_unknown_type_is_kept_and_ignored(engine: Engine) -> None:
    event = event_dict("issuing_card.created", {"id": "ic_1", "object": "issuing.card"})
    store(engine, event)
    worker(engine).drain()
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts) == ("ignored", 1)
    assert orjson.loads(row.payload)["type"] == "issuing_card.created"


def test_failure_is_recorded_retried_with_backoff_then_parked(engine: Engine) -> None:
    # A charge of a payment that never arrives: deferred, retried, parked.
    charge = {"id": "ch_lonely", "object": "charge", "payment_intent": "pi_lonely"}
    event = event_dict("charge.succeeded", charge)
    store(engine, event)
    slow = worker(engine, backoff=lambda _attempts: 3600.0)
    slow.drain()
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts) == ("pending", 1)  # retrying, with its error
    assert row.last_error is not None
    assert "pi_lonely" in row.last_error
    assert slow.drain() == 0  # not due before its backoff
    assert event_row(engine, event["id"]).attempts == 1
    with engine.begin() as connection:  # the backoff elapses
        connection.execute(update(StripeEvent).values(next_attempt_at=StripeEvent.received_at))
    fast = worker(engine, max_attempts=3)
    fast.drain()
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts) == ("failed", 3)
    assert fast.counters.parked == 1
    assert fast.drain() == 0  # parked: no more attempts


def test_malformed_event_of_a_known_type_fails_with_its_error(engine: Engine) -> None:
    event = event_dict("payment_intent.succeeded", {"id": "pi_bad", "object": "payment_intent"})
    store(engine, event)
    worker(engine, max_attempts=1).drain()
    row = event_row(engine, event["id"])
    assert row.status == "failed"
    assert row.last_error is not None
    assert row.last_error.startswith("KeyError")
    with Session(engine) as session:
        assert session.scalars(select(Payment)).first() is None  # savepoint rolled back


def test_event_from_another_api_version_is_processed_and_counted(engine: Engine) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_v"), api_version="2024-06-20")
    store(engine, event)
    other = worker(engine, api_version="2026-10-28.endive")
    other.drain()
    assert event_row(engine, event["id"]).status == "processed"
    assert payment(engine, "pi_v").status == "succeeded"
    assert other.counters.other_api_version == 1


@pytest.mark.timeout(120)
def test_concurrent_workers_apply_each_event_once(engine: Engine) -> None:
    events = []
    for index in range(300):
        pi = f"pi_c{index % 60}"
        status = "succeeded" if index >= 240 else "processing"
        events.append(
            event_dict(
                "payment_intent.processing", payment_intent(pi, status=status), created=1000 + index
            )
        )
    store(engine, *events)
    workers = [worker(engine, batch_size=25) for _ in range(3)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)
    with Session(engine) as session:
        rows = list(session.scalars(select(StripeEvent)))
        assert {row.status for row in rows} == {"processed"}
        assert {row.attempts for row in rows} == {1}
        statuses = {p.stripe_id: p.status for p in session.scalars(select(Payment))}
    assert len(statuses) == 60
    assert set(statuses.values()) == {"succeeded"}
    assert sum(w.counters.processed for w in workers) == 300


def test_same_second_events_in_one_batch_are_resolved_by_refetching(engine: Engine) -> None:
    from paydesk.webhooks.handlers import Fetcher

    subscription = {
        "id": "sub_tie",
        "object": "subscription",
        "customer": "cus_1",
        "items": {"data": []},
    }
    created = event_dict(
        "customer.subscription.created", {**subscription, "status": "active"}, created=500
    )
    deleted = event_dict(
        "customer.subscription.deleted", {**subscription, "status": "canceled"}, created=500
    )
    store(engine, deleted, created)  # stored (and so claimed) in the wrong order
    stripe_now = {**subscription, "status": "canceled"}
    fetcher = Fetcher({"subscription": lambda _id: stripe_now})
    worker(engine, fetcher=fetcher).drain()
    with Session(engine) as session:
        status = session.scalars(select(Subscription.status)).one()
    assert status == "canceled"
    assert event_row(engine, created["id"]).outcome == "refetched"
    assert fetcher.fetched == 1


def test_an_event_from_the_second_the_mirror_was_read_from_stripe_is_refetched(
    engine: Engine,
) -> None:
    # The portal confirms a first payment by reading the subscription from Stripe; the
    # ``created`` event of that same second carries the earlier ``incomplete`` state.
    from paydesk.billing.mirror import apply_subscription
    from paydesk.webhooks.handlers import Fetcher

    subscription = {"id": "sub_sync", "object": "subscription", "customer": "cus_1"}
    with Session(engine) as session:
        apply_subscription(session, {**subscription, "status": "active"}, 700)
        session.commit()
    created = event_dict(
        "customer.subscription.created", {**subscription, "status": "incomplete"}, created=700
    )
    store(engine, created)
    fetcher = Fetcher({"subscription": lambda _id: {**subscription, "status": "active"}})
    worker(engine, fetcher=fetcher).drain()
    with Session(engine) as session:
        assert session.scalars(select(Subscription.status)).one() == "active"
    assert event_row(engine, created["id"]).outcome == "refetched"
    assert fetcher.fetched == 1


def test_without_stripe_a_same_second_event_never_moves_a_status_back(engine: Engine) -> None:
    from paydesk.billing.mirror import apply_subscription

    subscription = {"id": "sub_rank", "object": "subscription", "customer": "cus_1"}
    with Session(engine) as session:
        apply_subscription(session, {**subscription, "status": "active"}, 800)
        session.commit()
    created = event_dict(
        "customer.subscription.created", {**subscription, "status": "incomplete"}, created=800
    )
    store(engine, created)
    worker(engine).drain()
    with Session(engine) as session:
        assert session.scalars(select(Subscription.status)).one() == "active"
    assert event_row(engine, created["id"]).outcome == "stale"


# PostgreSQL only: SQLite sessions take the write lock at BEGIN, so no insert can
# interleave with a batch there and the race cannot happen.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_row_inserted_concurrently_mid_batch_is_recovered_from(engine: Engine) -> None:
    # The optimistic pass inserts new rows without a savepoint; if another writer (an
    # API call) inserted the same object meanwhile, the batch is redone safely.
    from paydesk.db.models.base import utcnow

    class RacedWorker(Worker):
        def _prefetch(self, session: Session, payloads: dict[int, dict[str, Any]]) -> None:
            super()._prefetch(session, payloads)
            with engine.begin() as other:  # the API's insert, committed in between
                other.execute(
                    Payment.__table__.insert().values(
                        stripe_id="pi_race",
                        amount=1,
                        currency="usd",
                        status="processing",
                        amount_received=0,
                        amount_refunded=0,
                        capture_method="automatic",
                        disputed=False,
                        livemode=False,
                        stripe_created=0,
                        source_time=0,
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )

    event = event_dict("payment_intent.succeeded", payment_intent("pi_race", amount=777))
    store(engine, event)
    raced = RacedWorker(engine, backoff=lambda _attempts: 0.0)
    assert raced.run_once() == 1
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts) == ("processed", 1)
    with Session(engine) as session:
        payments = list(session.scalars(select(Payment)))
    assert [(p.stripe_id, p.status, p.amount) for p in payments] == [("pi_race", "succeeded", 777)]


def test_a_batch_claimed_by_a_dead_worker_is_claimed_again_after_its_lease(engine: Engine) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_lease", amount=700))
    store(engine, event)
    crashed = worker(engine, lease=timedelta(seconds=1))
    assert len(crashed.claim().ids) == 1  # claimed, then the worker "dies" without applying
    survivor = worker(engine)
    assert survivor.claim().ids == []  # reserved while the lease runs
    time.sleep(1.2)
    assert survivor.drain() == 1
    row = event_row(engine, event["id"])
    assert (row.status, row.attempts) == ("processed", 1)
