"""The one query service behind console lists, CSV exports and Admin API lists."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from paydesk import queries
from paydesk.db.models import Customer, Dispute, Payment, Refund, StripeEvent, Subscription
from paydesk.errors import InvalidInput


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        session.add_all(
            [
                Customer(stripe_id="cus_ada", email="Ada@Example.com", user_id="u1"),
                Customer(stripe_id="cus_bob", email="bob@example.com", user_id="u2"),
                Customer(stripe_id="cus_gone", email="gone@example.com", deleted=True),
            ]
        )
        for i in range(5):
            session.add(
                Payment(
                    stripe_id=f"pi_a{i}",
                    customer_id="cus_ada",
                    amount=1000 + i,
                    currency="usd",
                    status="succeeded",
                    latest_charge_id=f"ch_a{i}",
                    stripe_created=100 + i,
                )
            )
        session.add(
            Payment(
                stripe_id="pi_b0",
                customer_id="cus_bob",
                amount=500,
                currency="eur",
                status="requires_payment_method",
                stripe_created=200,
            )
        )
        session.add(
            Refund(
                stripe_id="re_1",
                payment_intent_id="pi_a1",
                charge_id="ch_a1",
                amount=10,
                currency="usd",
                status="succeeded",
                stripe_created=150,
            )
        )
        session.add(
            Dispute(
                stripe_id="dp_1",
                payment_intent_id="pi_a2",
                charge_id="ch_a2",
                amount=1002,
                currency="usd",
                status="needs_response",
                reason="fraudulent",
                stripe_created=160,
            )
        )
        session.add(
            Subscription(stripe_id="sub_1", customer_id="cus_bob", status="active", tier="premium")
        )
        session.flush()
        yield session
        session.rollback()


def ids(session: Session, model: type, query: object) -> list[str]:
    rows, _ = queries.page(session, model, query, None, 100)  # type: ignore[arg-type]
    return [row.stripe_id for row in rows]


def test_search_matches_ids_customer_ids_and_emails_in_any_case(db: Session) -> None:
    everything_of_ada = [f"pi_a{i}" for i in reversed(range(5))]
    for q in (
        "cus_ada",
        "ada@example.com",
        "Ada@Example.com",
        "  ADA@EXAMPLE.COM ",
    ):
        assert ids(db, Payment, queries.payments(queries.PaymentFilter(q=q))) == everything_of_ada
    assert ids(db, Payment, queries.payments(queries.PaymentFilter(q="ch_a3"))) == ["pi_a3"]
    assert ids(db, Payment, queries.payments(queries.PaymentFilter(q="nobody"))) == []
    assert ids(
        db, Subscription, queries.subscriptions(queries.SubscriptionFilter(q="BOB@example.com"))
    ) == ["sub_1"]
    assert ids(db, Customer, queries.customers(queries.CustomerFilter(q="u2"))) == ["cus_bob"]
    assert ids(
        db, Customer, queries.customers(queries.CustomerFilter(email="ada@example.com"))
    ) == ["cus_ada"]
    # Deleted customers are not listed.
    assert ids(db, Customer, queries.customers(queries.CustomerFilter(q="gone@example.com"))) == []


def test_filters_narrow(db: Session) -> None:
    f = queries.PaymentFilter(status="succeeded", currency="USD")
    assert len(ids(db, Payment, queries.payments(f))) == 5
    assert ids(db, Payment, queries.payments(queries.PaymentFilter(currency="eur"))) == ["pi_b0"]
    assert ids(db, Refund, queries.refunds(queries.RefundFilter(customer="cus_ada"))) == ["re_1"]
    assert ids(db, Refund, queries.refunds(queries.RefundFilter(customer="cus_bob"))) == []
    assert ids(db, Dispute, queries.disputes(queries.DisputeFilter(q="ch_a2"))) == ["dp_1"]
    assert ids(db, Dispute, queries.disputes(queries.DisputeFilter(status="won"))) == []


def test_keyset_pages_and_export_see_every_row_once(db: Session) -> None:
    query = queries.payments(queries.PaymentFilter())
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = queries.page(db, Payment, query, cursor, 2)
        seen += [r.stripe_id for r in rows]
        if cursor is None:
            break
    assert seen == ["pi_b0", "pi_a4", "pi_a3", "pi_a2", "pi_a1", "pi_a0"]
    assert [r.stripe_id for r in queries.iter_all(db, Payment, query, batch=4)] == seen


@pytest.mark.parametrize("cursor", ["!!", "1_", "_1", "1" * 13 + "_1", "1_" + "9" * 19, "١_1"])
def test_foreign_cursors_are_invalid_input(db: Session, cursor: str) -> None:
    with pytest.raises(InvalidInput):
        queries.page(db, Payment, queries.payments(queries.PaymentFilter()), cursor, 10)


def test_events_page_older_and_timeline(db: Session) -> None:
    for i in range(5):
        db.add(
            StripeEvent(
                event_id=f"evt_{i}",
                type="payment_intent.succeeded",
                created=1000 + i,
                object_id=f"pi_a{i}",
                payload="{}",
                status="processed" if i % 2 else "failed",
            )
        )
    db.flush()
    first, cursor = queries.events(db, queries.EventFilter(), limit=3)
    assert [e.event_id for e in first] == ["evt_4", "evt_3", "evt_2"]
    assert cursor is not None
    rest, end = queries.events(db, queries.EventFilter(), cursor=cursor, limit=3)
    assert [e.event_id for e in rest] == ["evt_1", "evt_0"]
    assert end is None
    failed, _ = queries.events(db, queries.EventFilter(status="failed"))
    assert [e.event_id for e in failed] == ["evt_4", "evt_2", "evt_0"]
    assert [e.event_id for e in queries.timeline(db, ["pi_a3", "pi_a1", ""])] == ["evt_1", "evt_3"]
    assert queries.timeline(db, []) == []
