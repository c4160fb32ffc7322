"""Concurrent writers of one day's rollup: each recomputes after the other committed."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, delete, func, select, text

from paydesk.db.engine import session_factory
from paydesk.db.models import (
    DailyRollup,
    MrrCustomer,
    MrrDaily,
    MrrSegment,
    Payment,
    Subscription,
    SubscriptionDaily,
)

BASE = 1_767_225_600  # 2026-01-01
WRITERS, EACH = 4, 15


def test_concurrent_commits_on_one_day_keep_its_rollup_exact(engine: Engine) -> None:
    sessions = session_factory(engine)
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            barrier.wait()
            for i in range(EACH):
                with sessions() as session, session.begin():
                    session.add(
                        Payment(
                            stripe_id=f"pi_c{number}_{i}", stripe_created=BASE + i,
                            currency="usd", status="succeeded", amount=100 + i,
                            amount_received=100 + i,
                        )
                    )  # fmt: skip
                    session.add(
                        Subscription(
                            stripe_id=f"sub_c{number}_{i}", customer_id="cus_shared",
                            status="active", tier="premium", unit_amount=999, currency="usd",
                            stripe_created=BASE + number * 100 + i,
                        )
                    )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with sessions() as session:
            row = session.get(DailyRollup, ("usd", BASE))
            assert row is not None
            assert row.payments_succeeded == WRITERS * EACH
            assert row.payments_volume == session.scalar(select(func.sum(Payment.amount)))
            assert row.subscriptions_new == WRITERS * EACH
            assert session.get(SubscriptionDaily, ("premium", "active", BASE)).subscriptions == (
                WRITERS * EACH
            )
            # One customer, many subscriptions written concurrently: its MRR is all of them.
            last = session.scalars(
                select(MrrSegment).order_by(MrrSegment.valid_from.desc()).limit(1)
            ).one()
            assert (last.amount_num, last.amount_den, last.valid_to) == (
                999 * WRITERS * EACH, 1, None
            )  # fmt: skip
    finally:
        with sessions() as session, session.begin():
            for table in (DailyRollup, SubscriptionDaily, MrrSegment, MrrCustomer, MrrDaily):
                session.execute(delete(table))
            session.execute(delete(Payment))
            session.execute(delete(Subscription))


def test_a_savepoint_leaves_the_rollups_and_their_locks_to_the_outer_commit(
    engine: Engine,
) -> None:
    # The worker applies each event in a savepoint and goes on updating mirror rows;
    # a rollup lock taken there would be held meanwhile, and a request holding one of
    # those rows while waiting for that lock at its own commit deadlocks with it.
    sessions = session_factory(engine)
    postgres = engine.dialect.name == "postgresql"
    try:
        with sessions() as session, session.begin():
            with session.begin_nested():
                session.add(
                    Payment(
                        stripe_id="pi_savepoint", stripe_created=BASE, currency="usd",
                        status="succeeded", amount=500, amount_received=500,
                    )
                )  # fmt: skip
            assert session.get(DailyRollup, ("usd", BASE)) is None
            if postgres:
                held = session.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid()"
                    )
                )
                assert held == 0
        with sessions() as session:
            row = session.get(DailyRollup, ("usd", BASE))
            assert row is not None
            assert (row.payments_succeeded, row.payments_volume) == (1, 500)
    finally:
        with sessions() as session, session.begin():
            session.execute(delete(DailyRollup))
            session.execute(delete(Payment))
