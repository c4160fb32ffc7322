"""Guide checklist — Refunds — against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.billing.customers import ensure_customer
from paydesk.billing.payments import PaymentRequest, create_payment, get_payment
from paydesk.billing.refunds import RefundRequest, refund_payment
from paydesk.db.models import Customer, Payment, Refund
from paydesk.errors import Conflict, InvalidInput, NotFound, PaymentFailed
from tests.support.stack import Stack


@pytest.fixture
def customer(stack: Stack, session: Session) -> Customer:
    return ensure_customer(session, stack.gateway, user_id="user-r", email="r@example.com")


@pytest.fixture
def paid(stack: Stack, session: Session, customer: Customer) -> Payment:
    request = PaymentRequest(
        amount=5000, currency="usd", request_key="p1", payment_method="pm_card_visa"
    )
    return create_payment(session, stack.gateway, customer, request).payment


def refund(stack: Stack, session: Session, payment_id: str, **kw: object) -> Refund:
    kw.setdefault("requested_by", "admin@example.com")
    return refund_payment(session, stack.gateway, RefundRequest(payment_id=payment_id, **kw))  # type: ignore[arg-type]


def test_full_refund(stack: Stack, session: Session, paid: Payment) -> None:
    row = refund(stack, session, paid.stripe_id)
    assert (row.amount, row.currency, row.status) == (5000, "usd", "succeeded")
    assert row.requested_by == "admin@example.com"
    assert get_payment(session, paid.stripe_id).amount_refunded == 5000
    charge = stack.sdk.v1.charges.retrieve(str(paid.latest_charge_id))
    assert charge.refunded is True
    with pytest.raises(Conflict) as again:
        refund(stack, session, paid.stripe_id)
    assert again.value.code == "already_refunded"


def test_partial_refund(stack: Stack, session: Session, paid: Payment) -> None:
    first = refund(stack, session, paid.stripe_id, amount=1500, request_key="a")
    second = refund(stack, session, paid.stripe_id, amount=1000, request_key="b")
    assert first.stripe_id != second.stripe_id
    assert get_payment(session, paid.stripe_id).amount_refunded == 2500
    with pytest.raises(InvalidInput) as too_much:
        refund(stack, session, paid.stripe_id, amount=2501)
    assert (too_much.value.field, too_much.value.code) == ("amount", "amount_too_large")
    assert "25.00 USD" in too_much.value.message
    rest = refund(stack, session, paid.stripe_id)
    assert rest.amount == 2500


def test_refund_declined_payment(stack: Stack, session: Session, customer: Customer) -> None:
    request = PaymentRequest(
        amount=2000, currency="usd", request_key="d", payment_method="pm_card_visa_chargeDeclined"
    )
    with pytest.raises(PaymentFailed) as declined:
        create_payment(session, stack.gateway, customer, request)
    payment_id = declined.value.details["payment"]
    with pytest.raises(Conflict) as refused:
        refund(stack, session, payment_id)
    assert refused.value.code == "payment_declined"
    assert "declined" in refused.value.message
    assert stack.sdk.v1.refunds.list({"payment_intent": payment_id}).data == []


@pytest.mark.parametrize("reason", ["duplicate", "fraudulent", "requested_by_customer"])
def test_refund_with_reason(stack: Stack, session: Session, paid: Payment, reason: str) -> None:
    row = refund(stack, session, paid.stripe_id, amount=100, reason=reason, note="ticket #42")
    assert (row.reason, row.note) == (reason, "ticket #42")
    assert stack.sdk.v1.refunds.retrieve(row.stripe_id).reason == reason


def test_refund_with_unknown_reason_is_refused_before_stripe(
    stack: Stack, session: Session, paid: Payment
) -> None:
    with pytest.raises(InvalidInput) as caught:
        refund(stack, session, paid.stripe_id, reason="changed_mind")
    assert caught.value.field == "reason"
    assert stack.sdk.v1.refunds.list({"payment_intent": paid.stripe_id}).data == []


def test_refund_of_unknown_payment(stack: Stack, session: Session) -> None:
    with pytest.raises(NotFound):
        refund(stack, session, "pi_unknown")


def test_double_clicked_refund_is_one_refund(stack: Stack, session: Session, paid: Payment) -> None:
    first = refund(stack, session, paid.stripe_id, amount=700, request_key="form-token-1")
    second = refund(stack, session, paid.stripe_id, amount=700, request_key="form-token-1")
    assert first.stripe_id == second.stripe_id
    assert len(stack.sdk.v1.refunds.list({"payment_intent": paid.stripe_id}).data) == 1
    assert len(session.scalars(select(Refund)).all()) == 1
