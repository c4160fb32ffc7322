"""The guide's "Webhooks" checklist, each item driven by a real signed delivery.

The sandbox performs the API calls (`paydesk trigger`'s sequences), emits the
events and delivers them signed to a Paydesk served by uvicorn on loopback; the
worker applies them; the mirror must then show what Stripe shows.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.db.models import Dispute, Payment, Subscription
from paydesk.stripe_gateway.triggers import run_trigger
from tests.webhooks.conftest import Live


def payment_of(live: Live, pi_id: str) -> Payment:
    with Session(live.engine) as session:
        return session.scalars(select(Payment).where(Payment.stripe_id == pi_id)).one()


def subscription_of(live: Live, sub_id: str) -> Subscription:
    with Session(live.engine) as session:
        return session.scalars(select(Subscription).where(Subscription.stripe_id == sub_id)).one()


def applied(live: Live, event_type: str) -> str:
    """Wait for the delivery, apply, check it was processed; the object's id."""
    (row,) = live.wait_for(event_type)
    live.apply()
    (row,) = live.stored(event_type)
    assert row.status == "processed", row.last_error
    assert row.attempts == 1
    assert row.object_id is not None
    return row.object_id


def test_payment_success(live: Live) -> None:
    steps = run_trigger(live.gateway, "payment_intent.succeeded")
    pi_id = applied(live, "payment_intent.succeeded")
    assert pi_id == steps[0].object_id
    payment = payment_of(live, pi_id)
    assert (payment.status, payment.amount, payment.currency) == ("succeeded", 2000, "usd")
    assert payment.amount_received == 2000
    assert payment.failure_code is None
    # Every delivery was acknowledged with a 2xx only after it was stored.
    assert [d["succeeded"] for d in live.deliveries()] == [True]


def test_payment_failure(live: Live) -> None:
    steps = run_trigger(live.gateway, "payment_intent.payment_failed")
    assert steps[0].error == "card_error (expected)"
    pi_id = applied(live, "payment_intent.payment_failed")
    payment = payment_of(live, pi_id)
    assert payment.status == "requires_payment_method"
    assert payment.failure_code == "card_declined"
    assert payment.decline_code == "generic_decline"


def test_subscription_created(live: Live) -> None:
    steps = run_trigger(live.gateway, "customer.subscription.created")
    sub_id = applied(live, "customer.subscription.created")
    assert sub_id == steps[-1].object_id
    subscription = subscription_of(live, sub_id)
    assert subscription.status == "active"
    assert subscription.customer_id == steps[0].object_id
    assert subscription.price_id == steps[2].object_id
    assert subscription.unit_amount == 1500
    assert subscription.current_period_end is not None


def test_subscription_updated(live: Live) -> None:
    steps = run_trigger(live.gateway, "customer.subscription.updated")
    live.wait_for("customer.subscription.created")
    sub_id = applied(live, "customer.subscription.updated")
    assert sub_id == steps[3].object_id
    subscription = subscription_of(live, sub_id)
    assert subscription.status == "active"
    stripe_side = live.gateway.retrieve_subscription(sub_id)
    assert subscription.source_time >= stripe_side["created"]


def test_subscription_deleted(live: Live) -> None:
    run_trigger(live.gateway, "customer.subscription.deleted")
    live.wait_for("customer.subscription.created")
    sub_id = applied(live, "customer.subscription.deleted")
    subscription = subscription_of(live, sub_id)
    assert subscription.status == "canceled"
    assert subscription.canceled_at is not None


def test_refund(live: Live) -> None:
    steps = run_trigger(live.gateway, "charge.refunded")
    live.wait_for("payment_intent.succeeded")
    applied(live, "charge.refunded")
    payment = payment_of(live, str(steps[0].object_id))
    assert payment.status == "succeeded"
    assert payment.amount_refunded == 100
    assert payment.card_last4 == "4242"  # folded in from the refunded charge


def test_dispute(live: Live) -> None:
    steps = run_trigger(live.gateway, "charge.dispute.created")
    dispute_id = applied(live, "charge.dispute.created")
    with Session(live.engine) as session:
        dispute = session.scalars(select(Dispute).where(Dispute.stripe_id == dispute_id)).one()
        assert dispute.payment_intent_id == steps[0].object_id
        assert dispute.status == "warning_needs_response"
        assert dispute.amount == 100
        assert dispute.reason
        assert dispute.evidence_due_by is not None
        assert dispute.closed_at is None
    live.wait_for("payment_intent.succeeded")
    live.apply()
    assert payment_of(live, str(steps[0].object_id)).disputed is True
