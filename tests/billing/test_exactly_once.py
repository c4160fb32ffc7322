"""Admin operations whose answer from Stripe is lost: repeated, they apply exactly once.

The sandbox applies every POST to the operation's path and then drops the connection,
on the first try and on each of the SDK's retries, so Paydesk reports the operation
as failed (503 ``stripe_unreachable``) and rolls its local change back, although
Stripe made it. Repeating the same operation (same request key) with faults off must
then find Stripe's object and mirror it, never make a second one or refuse.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.orm import Session

from paydesk.billing.customers import ensure_customer
from paydesk.billing.payments import PaymentRequest, create_payment, get_payment
from paydesk.billing.refunds import RefundRequest, refund_payment
from paydesk.billing.subscriptions import cancel_subscription, change_tier, create_subscription
from paydesk.db.models import Customer
from paydesk.errors import StripeUnavailable
from tests.support.stack import Stack


def drop_posts(stack: Stack, path: str, method: str = "POST") -> None:
    response = httpx.put(
        f"{stack.sandbox.url}/_sandbox/faults",
        data={"share": "1", "kinds": "drop_after_apply", "path": path, "methods": method},
    )
    assert response.status_code == 200, response.text


def faults_off(stack: Stack) -> int:
    """Faults off; how many were injected."""
    injected: int = httpx.delete(f"{stack.sandbox.url}/_sandbox/faults").json()["injected"]
    return injected


def at_stripe(stack: Stack, kind: str) -> list[dict[str, object]]:
    return list(stack.sandbox.state.objects.get(kind, {}).values())


@pytest.fixture
def customer(stack: Stack, session: Session) -> Customer:
    return ensure_customer(session, stack.gateway, user_id="user-x", email="x@example.com")


def pay(stack: Stack, session: Session, customer: Customer, key: str = "pay-1") -> str:
    request = PaymentRequest(
        amount=4200, currency="usd", request_key=key, payment_method="pm_card_visa"
    )
    return create_payment(session, stack.gateway, customer, request).payment.stripe_id


def test_payment(stack: Stack, session: Session, customer: Customer) -> None:
    session.commit()
    drop_posts(stack, "/v1/payment_intents")
    with pytest.raises(StripeUnavailable) as lost:
        pay(stack, session, customer)
    session.rollback()
    assert lost.value.code == "stripe_unreachable"
    assert faults_off(stack) == 4  # the first try and the SDK's 3 retries
    assert len(at_stripe(stack, "payment_intent")) == 1
    payment_id = pay(stack, session, customer)
    assert [pi["id"] for pi in at_stripe(stack, "payment_intent")] == [payment_id]
    assert get_payment(session, payment_id).status == "succeeded"


@pytest.mark.parametrize("amount", [None, 1000])
def test_refund(stack: Stack, session: Session, customer: Customer, amount: int | None) -> None:
    payment_id = pay(stack, session, customer)
    session.commit()
    request = RefundRequest(
        payment_id=payment_id, requested_by="admin@example.com", amount=amount, request_key="r-1"
    )
    drop_posts(stack, "/v1/refunds")
    with pytest.raises(StripeUnavailable):
        refund_payment(session, stack.gateway, request)
    session.rollback()
    assert faults_off(stack) == 4
    assert len(at_stripe(stack, "refund")) == 1
    # Before the fix a full refund's repeat was refused as "already refunded" and a
    # partial one was made again (the mirror did not know the first).
    row = refund_payment(session, stack.gateway, request)
    assert [r["id"] for r in at_stripe(stack, "refund")] == [row.stripe_id]
    assert row.amount == (amount or 4200)
    assert get_payment(session, payment_id).amount_refunded == (amount or 4200)
    assert refund_payment(session, stack.gateway, request).stripe_id == row.stripe_id


def test_tier_change_and_cancel(stack: Stack, session: Session, customer: Customer) -> None:
    sub = create_subscription(
        session,
        stack.gateway,
        stack.settings,
        customer,
        tier="premium",
        request_key="sub-1",
        payment_method="pm_card_visa",
    ).subscription
    session.commit()
    invoices_before = len(at_stripe(stack, "invoice"))

    drop_posts(stack, f"/v1/subscriptions/{sub.stripe_id}")
    with pytest.raises(StripeUnavailable):
        change_tier(
            session,
            stack.gateway,
            stack.settings,
            sub.stripe_id,
            tier="enterprise",
            request_key="t",
        )
    session.rollback()
    assert faults_off(stack) == 4
    invoices_after_upgrade = len(at_stripe(stack, "invoice"))
    assert invoices_after_upgrade == invoices_before + 1  # one prorated invoice
    changed = change_tier(
        session, stack.gateway, stack.settings, sub.stripe_id, tier="enterprise", request_key="t"
    ).subscription
    assert changed.tier == "enterprise"
    assert len(at_stripe(stack, "invoice")) == invoices_after_upgrade
    session.commit()

    drop_posts(stack, f"/v1/subscriptions/{sub.stripe_id}", "DELETE")  # cancel now
    with pytest.raises(StripeUnavailable):
        cancel_subscription(
            session, stack.gateway, stack.settings, sub.stripe_id, at_period_end=False
        )
    session.rollback()
    assert faults_off(stack) == 4
    canceled = cancel_subscription(
        session, stack.gateway, stack.settings, sub.stripe_id, at_period_end=False
    ).subscription
    assert canceled.status == "canceled"
    assert [s["status"] for s in at_stripe(stack, "subscription")] == ["canceled"]
