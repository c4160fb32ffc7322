"""Promotion codes on the billing API's subscribe, over real HTTP and the sandbox."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from paydesk.db.models import Customer, Invoice, Subscription
from tests.support.stack import Stack
from tests.web.api.test_billing_api import auth, billing, token

__all__ = ["billing"]  # the fixture, imported for the tests below


def promo(stack: Stack, code: str, coupon: dict[str, Any], **extra: Any) -> dict[str, Any]:
    created = stack.sdk.v1.coupons.create(coupon)
    params: dict[str, Any] = {"promotion": {"type": "coupon", "coupon": created.id}, "code": code}
    params.update(extra)
    return stack.sdk.v1.promotion_codes.create(params).to_dict(recursive=True)  # type: ignore[arg-type]


def subscribe(billing: httpx.Client, user: str, **body: Any) -> httpx.Response:
    return billing.post("/api/billing/subscription", json=body, headers=auth(token(user)))


def first_invoice(stack: Stack, subscription_id: str) -> Invoice:
    with stack.sessions() as session:
        row = session.scalars(
            select(Subscription).where(Subscription.stripe_id == subscription_id)
        ).one()
        return session.scalars(
            select(Invoice).where(Invoice.stripe_id == row.latest_invoice_id)
        ).one()


def counts(stack: Stack) -> tuple[int, int, int]:
    with stack.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Customer)) or 0,
            session.scalar(select(func.count()).select_from(Subscription)) or 0,
            session.scalar(select(func.count()).select_from(Invoice)) or 0,
        )


def refused(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["field"] == "promotion_code", error
    return error


def test_percent_off_code_discounts_the_first_invoice(billing: httpx.Client, stack: Stack) -> None:
    made = promo(stack, "SPRING25", {"percent_off": 25, "duration": "once"})
    response = subscribe(
        billing, "u-pct", tier="premium", payment_method="pm_card_visa", promotion_code="spring25"
    )
    assert response.status_code == 201, response.text
    body = response.json()["subscription"]
    assert body["status"] == "active"
    subscription = stack.sdk.v1.subscriptions.retrieve(body["id"])
    assert subscription.discounts == []  # a "once" coupon ends with the first invoice
    invoice = stack.sdk.v1.invoices.retrieve(str(subscription.latest_invoice))
    assert [d.amount for d in invoice.total_discount_amounts or []] == [250]
    assert invoice.subtotal == 999
    assert invoice.total == 749  # 999 - round_half_up(249.75)
    assert invoice.amount_paid == 749
    mirrored = first_invoice(stack, body["id"])
    assert (mirrored.amount_due, mirrored.amount_paid) == (749, 749)
    assert stack.sdk.v1.promotion_codes.retrieve(made["id"]).times_redeemed == 1


def test_amount_off_code_without_card_leaves_the_discounted_amount_to_pay(
    billing: httpx.Client, stack: Stack
) -> None:
    promo(stack, "FIVEOFF", {"amount_off": 500, "currency": "usd", "duration": "forever"})
    response = subscribe(billing, "u-amt", tier="enterprise", promotion_code="FIVEOFF")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["subscription"]["status"] == "incomplete"
    assert "_secret_" in body["client_secret"]
    subscription = stack.sdk.v1.subscriptions.retrieve(body["subscription"]["id"])
    assert len(subscription.discounts) == 1
    mirrored = first_invoice(stack, body["subscription"]["id"])
    assert mirrored.amount_due == 2499


POISON = {
    "unknown": "NOSUCHCODE",
    "nul": "SPRING\x0025",
    "spaces-inside": "SPRING 25",
    "unicode": "SPRİNG25",
    "empty": "",
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_unknown_or_malformed_code_creates_nothing(
    billing: httpx.Client, stack: Stack, case: str
) -> None:
    promo(stack, "SPRING25", {"percent_off": 25})
    before = counts(stack)
    customers_before = len(stack.sdk.v1.customers.list({"limit": 100}).data)
    response = subscribe(
        billing, f"u-{case}", tier="premium", payment_method="pm_card_visa",
        promotion_code=POISON[case],
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert refused(response)["code"] == "promotion_code_invalid"
    assert counts(stack) == before
    assert len(stack.sdk.v1.customers.list({"limit": 100}).data) == customers_before
    assert stack.sdk.v1.subscriptions.list({"limit": 100}).data == []


def test_ten_thousand_characters_are_a_422(billing: httpx.Client, stack: Stack) -> None:
    before = counts(stack)
    response = subscribe(billing, "u-long", tier="premium", promotion_code="A" * 10_000)
    assert response.status_code == 422, response.text
    refused(response)
    wrong_type = subscribe(billing, "u-long", tier="premium", promotion_code=["SPRING25"])
    assert wrong_type.status_code == 422
    refused(wrong_type)
    assert counts(stack) == before


def test_inactive_expired_and_used_up_codes_are_refused(
    billing: httpx.Client, stack: Stack
) -> None:
    off = promo(stack, "OFFNOW", {"percent_off": 10})
    stack.sdk.v1.promotion_codes.update(off["id"], {"active": False})
    promo(stack, "SOONGONE", {"percent_off": 10}, expires_at=int(time.time()) + 2)
    promo(stack, "ONLYONE", {"percent_off": 10}, max_redemptions=1)
    first = subscribe(
        billing, "u-first", tier="premium", payment_method="pm_card_visa", promotion_code="ONLYONE"
    )
    assert first.status_code == 201, first.text
    time.sleep(2.5)
    for code in ("OFFNOW", "SOONGONE", "ONLYONE"):
        response = subscribe(
            billing, f"u-{code}", tier="premium", payment_method="pm_card_visa",
            promotion_code=code,
        )  # fmt: skip
        assert response.status_code == 422, (code, response.text)
        assert refused(response)["code"] == "promotion_code_invalid"
    assert len(stack.sdk.v1.subscriptions.list({"limit": 100}).data) == 1


def test_first_time_code_is_refused_to_a_customer_who_paid_before(
    billing: httpx.Client, stack: Stack
) -> None:
    promo(stack, "WELCOME", {"percent_off": 50}, restrictions={"first_time_transaction": True})
    user = "u-returning"
    paid = subscribe(billing, user, tier="premium", payment_method="pm_card_visa")
    assert paid.status_code == 201, paid.text
    ended = billing.post(
        "/api/billing/subscription/cancel", json={"at_period_end": False}, headers=auth(token(user))
    )
    assert ended.status_code == 200, ended.text
    again = subscribe(
        billing, user, tier="premium", payment_method="pm_card_visa", promotion_code="WELCOME"
    )
    assert again.status_code == 422, again.text
    assert refused(again)["code"] == "promotion_code_invalid"
    assert "first-time" in again.json()["error"]["message"]
    # A new customer may use it.
    fresh = subscribe(
        billing, "u-new", tier="premium", payment_method="pm_card_visa", promotion_code="WELCOME"
    )
    assert fresh.status_code == 201, fresh.text
    assert (
        first_invoice(stack, fresh.json()["subscription"]["id"]).amount_paid == 499
    )  # 999 - 500 (499.5 off, half up)


def test_stripe_refusal_of_the_discount_names_the_field(
    billing: httpx.Client, stack: Stack
) -> None:
    """A restriction Paydesk does not check itself (a minimum amount) is Stripe's 400,
    reported on ``promotion_code`` and creating no subscription."""
    promo(
        stack, "BIGSPEND", {"percent_off": 10},
        restrictions={"minimum_amount": 100_000, "minimum_amount_currency": "usd"},
    )  # fmt: skip
    response = subscribe(
        billing, "u-min", tier="premium", payment_method="pm_card_visa", promotion_code="BIGSPEND"
    )
    assert response.status_code == 422, response.text
    assert refused(response)["code"] == "promotion_code_invalid"
    assert stack.sdk.v1.subscriptions.list({"limit": 100}).data == []


def test_free_tier_takes_no_code(billing: httpx.Client, stack: Stack) -> None:
    promo(stack, "SPRING25", {"percent_off": 25})
    response = subscribe(billing, "u-free", tier="free", promotion_code="SPRING25")
    assert response.status_code == 422, response.text
    refused(response)


def test_the_same_request_is_one_subscription(billing: httpx.Client, stack: Stack) -> None:
    promo(stack, "SPRING25", {"percent_off": 25})
    headers = auth(token("u-twice")) | {"Idempotency-Key": "subscribe-1"}
    body = {"tier": "premium", "payment_method": "pm_card_visa", "promotion_code": "SPRING25"}
    first = billing.post("/api/billing/subscription", json=body, headers=headers)
    assert first.status_code == 201, first.text
    second = billing.post("/api/billing/subscription", json=body, headers=headers)
    assert second.status_code == 409  # the mirror already holds it: change the tier instead
    assert len(stack.sdk.v1.subscriptions.list({"limit": 100}).data) == 1
