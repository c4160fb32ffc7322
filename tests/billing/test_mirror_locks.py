"""Lock order of the mirror on PostgreSQL: a refund's payment before the refund itself.

A refund request updates the payment and then the refund; the worker, applying
``refund.*`` before ``charge.refunded`` in one batch, used to take them the other
way round, and under load PostgreSQL killed one of the two as a deadlock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from paydesk.billing.mirror import apply_payment_intent, apply_refund
from paydesk.db.engine import create_engine, session_factory
from paydesk.db.migrate import upgrade_to_head
from paydesk.db.models import Payment, Refund
from tests.support.databases import throwaway_postgres

pytestmark = pytest.mark.postgres

INTENT = {
    "id": "pi_lockorder",
    "object": "payment_intent",
    "amount": 5000,
    "amount_received": 5000,
    "currency": "usd",
    "status": "succeeded",
    "created": 1_700_000_000,
}
REFUND = {
    "id": "re_lockorder",
    "object": "refund",
    "amount": 1000,
    "currency": "usd",
    "status": "succeeded",
    "payment_intent": "pi_lockorder",
    "created": 1_700_000_100,
}


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    with throwaway_postgres() as url:
        upgrade_to_head(url)
        engine: Engine = create_engine(url)
        factory = session_factory(engine)
        with factory.begin() as setup:
            apply_payment_intent(setup, INTENT, 1_700_000_000)
        yield factory
        engine.dispose()


def test_applying_a_refund_waits_for_a_transaction_holding_its_payment(
    sessions: sessionmaker[Session],
) -> None:
    applied = threading.Event()

    def worker() -> None:
        with sessions.begin() as session:
            apply_refund(session, REFUND, 1_700_000_100)
        applied.set()

    with sessions() as request:  # the refund request: it has written the payment
        payment = request.scalars(select(Payment).where(Payment.stripe_id == INTENT["id"])).one()
        payment.amount_refunded = 1000
        request.flush()
        thread = threading.Thread(target=worker)
        thread.start()
        time.sleep(1.0)
        # The worker must queue behind the payment's lock instead of taking the refund first.
        assert not applied.is_set()
        stored = request.scalars(select(Refund).where(Refund.stripe_id == REFUND["id"])).all()
        assert stored == []
        request.commit()
    thread.join(timeout=30)
    assert applied.is_set()
    with sessions() as check:
        refund = check.scalars(select(Refund).where(Refund.stripe_id == REFUND["id"])).one()
        assert refund.payment_intent_id == INTENT["id"]
