"""Guide checklist — Subscriptions — against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.orm import Session

from paydesk.billing.customers import ensure_customer
from paydesk.billing.mirror import apply_customer
from paydesk.billing.subscriptions import (
    cancel_subscription,
    change_tier,
    create_subscription,
    refresh_subscription,
    resume_subscription,
)
from paydesk.db.models import Customer, Invoice
from paydesk.errors import Conflict, InvalidInput
from tests.support.stack import Stack

DAY = 86_400


@pytest.fixture
def customer(stack: Stack, session: Session) -> Customer:
    return ensure_customer(session, stack.gateway, user_id="user-s", email="s@example.com")


def subscribe(stack: Stack, session: Session, customer: Customer, tier: str, pm: str | None = None):
    return create_subscription(
        session,
        stack.gateway,
        stack.settings,
        customer,
        tier=tier,
        request_key=f"{tier}-{pm}",
        payment_method=pm,
    )


def test_create_subscription_free_needs_no_card(
    stack: Stack, session: Session, customer: Customer
) -> None:
    outcome = subscribe(stack, session, customer, "free")
    assert outcome.subscription.status == "active"
    assert outcome.subscription.tier == "free"
    assert outcome.subscription.unit_amount == 0
    assert outcome.subscription.current_period_end is not None


def test_create_subscription_with_card(stack: Stack, session: Session, customer: Customer) -> None:
    outcome = subscribe(stack, session, customer, "premium", "pm_card_visa")
    sub = outcome.subscription
    assert (sub.status, sub.tier, sub.unit_amount, sub.currency) == (
        "active",
        "premium",
        999,
        "usd",
    )
    assert outcome.payment_status == "paid"
    with pytest.raises(Conflict) as twice:
        subscribe(stack, session, customer, "enterprise", "pm_card_visa")
    assert twice.value.code == "subscription_exists"


def test_create_subscription_for_front_end_confirmation(
    stack: Stack, session: Session, customer: Customer
) -> None:
    outcome = subscribe(stack, session, customer, "enterprise")
    assert outcome.subscription.status == "incomplete"
    assert outcome.client_secret is not None
    intent_id = outcome.client_secret.split("_secret_")[0]
    # What Stripe.js does in the browser with the client secret:
    stack.sdk.v1.payment_intents.confirm(intent_id, {"payment_method": "pm_card_visa"})
    sub = refresh_subscription(
        session, stack.gateway, stack.settings, outcome.subscription.stripe_id
    )
    assert sub.status == "active"


def test_upgrade_subscription(stack: Stack, session: Session, customer: Customer) -> None:
    sub = subscribe(stack, session, customer, "premium", "pm_card_visa").subscription
    upgraded = change_tier(
        session, stack.gateway, stack.settings, sub.stripe_id, tier="enterprise", request_key="u1"
    ).subscription
    assert (upgraded.tier, upgraded.unit_amount, upgraded.status) == ("enterprise", 2999, "active")
    invoices = stack.sdk.v1.invoices.list({"subscription": sub.stripe_id}).data
    proration = [inv for inv in invoices if inv.billing_reason == "subscription_update"]
    assert proration, "an upgrade is invoiced at once"
    assert proration[0].status == "paid"
    assert 0 < proration[0].amount_paid <= 2999 - 999


def test_downgrade_subscription(stack: Stack, session: Session, customer: Customer) -> None:
    sub = subscribe(stack, session, customer, "enterprise", "pm_card_visa").subscription
    down = change_tier(
        session, stack.gateway, stack.settings, sub.stripe_id, tier="premium", request_key="d1"
    ).subscription
    assert (down.tier, down.unit_amount) == ("premium", 999)
    invoices = stack.sdk.v1.invoices.list({"subscription": sub.stripe_id}).data
    assert not [inv for inv in invoices if inv.billing_reason == "subscription_update"]
    with pytest.raises(Conflict) as same:
        change_tier(
            session, stack.gateway, stack.settings, sub.stripe_id, tier="premium", request_key="d2"
        )
    assert same.value.code == "same_tier"


def test_upgrade_from_free_needs_a_card(stack: Stack, session: Session, customer: Customer) -> None:
    sub = subscribe(stack, session, customer, "free").subscription
    with pytest.raises(InvalidInput) as caught:
        change_tier(
            session, stack.gateway, stack.settings, sub.stripe_id, tier="premium", request_key="x"
        )
    assert caught.value.field == "payment_method"
    upgraded = change_tier(
        session, stack.gateway, stack.settings, sub.stripe_id, tier="premium",
        request_key="y", payment_method="pm_card_visa",
    ).subscription  # fmt: skip
    assert (upgraded.tier, upgraded.status) == ("premium", "active")


def test_cancel_subscription_immediate(stack: Stack, session: Session, customer: Customer) -> None:
    sub = subscribe(stack, session, customer, "premium", "pm_card_visa").subscription
    canceled = cancel_subscription(
        session, stack.gateway, stack.settings, sub.stripe_id, at_period_end=False
    ).subscription
    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    with pytest.raises(Conflict):
        cancel_subscription(
            session, stack.gateway, stack.settings, sub.stripe_id, at_period_end=False
        )
    # Once canceled, the customer may subscribe again.
    assert subscribe(stack, session, customer, "free").subscription.status == "active"


def test_cancel_subscription_end_of_period(
    stack: Stack, session: Session, customer: Customer
) -> None:
    sub = subscribe(stack, session, customer, "premium", "pm_card_visa").subscription
    ending = cancel_subscription(
        session, stack.gateway, stack.settings, sub.stripe_id, at_period_end=True
    ).subscription
    assert (ending.status, ending.cancel_at_period_end) == ("active", True)
    assert ending.cancel_at == ending.current_period_end
    resumed = resume_subscription(
        session, stack.gateway, stack.settings, sub.stripe_id
    ).subscription
    assert (resumed.status, resumed.cancel_at_period_end) == ("active", False)
    with pytest.raises(Conflict):
        resume_subscription(session, stack.gateway, stack.settings, sub.stripe_id)


def clock_customer(stack: Stack, session: Session, pm: str) -> tuple[Customer, str]:
    clock = stack.sdk.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
    created = stack.sdk.v1.customers.create({"email": "clock@example.com", "test_clock": clock.id})
    row, _ = apply_customer(session, created.to_dict(), int(time.time()))
    row.user_id = f"user-{clock.id}"
    sub = create_subscription(
        session,
        stack.gateway,
        stack.settings,
        row,
        tier="premium",
        request_key="c",
        payment_method=pm,
    ).subscription
    return row, sub.stripe_id


def advance(stack: Stack, clock_id: str, seconds: int) -> None:
    clock = stack.sdk.v1.test_helpers.test_clocks.retrieve(clock_id)
    stack.sdk.v1.test_helpers.test_clocks.advance(
        clock_id, {"frozen_time": clock.frozen_time + seconds}
    )
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow
    while stack.sdk.v1.test_helpers.test_clocks.retrieve(clock_id).status != "ready":
        assert time.monotonic() < deadline, "test clock did not finish advancing"
        time.sleep(0.02)


def test_subscription_renewal(stack: Stack, session: Session) -> None:
    customer, sub_id = clock_customer(stack, session, "pm_card_visa")
    clock_id = stack.sdk.v1.customers.retrieve(customer.stripe_id).test_clock
    assert isinstance(clock_id, str)
    before = refresh_subscription(session, stack.gateway, stack.settings, sub_id)
    first_end = before.current_period_end
    advance(stack, clock_id, 32 * DAY)
    after = refresh_subscription(session, stack.gateway, stack.settings, sub_id)
    assert after.status == "active"
    assert after.current_period_start == first_end
    invoices = stack.sdk.v1.invoices.list({"subscription": sub_id}).data
    cycle = [inv for inv in invoices if inv.billing_reason == "subscription_cycle"]
    assert cycle
    assert cycle[0].status == "paid"
    assert cycle[0].amount_paid == 999


def test_failed_subscription_payment(stack: Stack, session: Session) -> None:
    customer, sub_id = clock_customer(stack, session, "pm_card_visa")
    clock_id = stack.sdk.v1.customers.retrieve(customer.stripe_id).test_clock
    assert isinstance(clock_id, str)
    # The card on file starts failing before the renewal (attach succeeds, charges fail).
    failing = stack.sdk.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": customer.stripe_id}
    )
    stack.sdk.v1.subscriptions.update(sub_id, {"default_payment_method": failing.id})
    advance(stack, clock_id, 32 * DAY)
    sub = refresh_subscription(session, stack.gateway, stack.settings, sub_id)
    assert sub.status == "past_due"
    invoices = stack.sdk.v1.invoices.list({"subscription": sub_id}).data
    failed = [inv for inv in invoices if inv.billing_reason == "subscription_cycle"]
    assert failed
    assert failed[0].status == "open"
    assert session.query(Invoice).count() >= 1
