"""``discounts[][discount]=di_…``: reusing a discount that already exists on the object
(or its subscription), and Stripe's refusal for any other (official SDK, real HTTP)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import stripe
from helpers import advance, at, customer_with_card, monthly_price


def _subscribed(
    client: stripe.StripeClient, coupon: str, amount: int = 2000
) -> tuple[str, stripe.Customer, stripe.Subscription]:
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": at(2026, 1, 1)})
    customer = customer_with_card(client, clock=clock.id)
    sub = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": monthly_price(client, amount).id}],
            "discounts": [{"coupon": coupon}],
        }
    )
    return clock.id, customer, sub


def test_update_keeps_an_existing_discount_and_adds_a_coupon(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    ten = client.v1.coupons.create({"percent_off": 10, "duration": "forever"})
    five = client.v1.coupons.create({"amount_off": 500, "currency": "usd", "duration": "forever"})
    clock, _customer, sub = _subscribed(client, ten.id)
    kept = sub.discounts[0]
    updated = client.v1.subscriptions.update(
        sub.id,
        {"discounts": [{"discount": kept}, {"coupon": five.id}]},  # type: ignore[list-item]
    )
    assert updated.discounts[0] == kept
    assert len(updated.discounts) == 2
    added = updated.discounts[1]
    assert event_types().count("customer.discount.created") == 2
    assert event_types().count("customer.discount.deleted") == 0
    assert client.v1.coupons.retrieve(ten.id).times_redeemed == 1
    advance(client, clock, at(2026, 2, 1, 2))
    renewal = client.v1.invoices.list({"subscription": sub.id, "limit": 1}).data[0]
    # 10 % of 2000 = 200, then 500 off what is left: total 1300.
    assert [(a.discount, a.amount) for a in renewal.total_discount_amounts or []] == [
        (kept, 200),
        (added, 500),
    ]
    assert (renewal.subtotal, renewal.total) == (2000, 1300)


def test_a_discount_of_another_customer_or_subscription_is_refused(
    client: stripe.StripeClient,
) -> None:
    coupon = client.v1.coupons.create({"percent_off": 10, "duration": "forever"})
    _, customer, sub = _subscribed(client, coupon.id)
    _, other_customer, other = _subscribed(client, coupon.id)
    foreign = other.discounts[0]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.update(sub.id, {"discounts": [{"discount": foreign}]})  # type: ignore[list-item]
    assert (err.value.http_status, err.value.param) == (400, "discounts[0][discount]")
    assert str(err.value.user_message) == (
        f"The discount {foreign} is not the current discount on the subscription's customer "
        f"{customer.id}. Discounts can only be applied to a subscription when they are the "
        "current customer discount or already exist on the subscription."
    )
    assert client.v1.subscriptions.retrieve(sub.id).discounts == sub.discounts
    # Customers hold no discount at this API version, so a new subscription can reuse none.
    with pytest.raises(stripe.InvalidRequestError) as create:
        client.v1.subscriptions.create(
            {
                "customer": other_customer.id,
                "items": [{"price": monthly_price(client, 100).id}],
                "discounts": [{"discount": foreign}],
            }
        )
    assert create.value.param == "discounts[0][discount]"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.subscriptions.update(sub.id, {"discounts": [{"discount": "di_missing"}]})
    assert (missing.value.code, missing.value.param) == (
        "resource_missing",
        "discounts[0][discount]",
    )


def test_an_invoice_reuses_its_subscription_discount(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"percent_off": 25, "duration": "forever"})
    _, customer, sub = _subscribed(client, coupon.id)
    discount = sub.discounts[0]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.create(
            {"customer": customer.id, "discounts": [{"discount": discount}]}  # type: ignore[list-item]
        )
    assert err.value.param == "discounts[0][discount]"
    assert "can only be applied to an invoice when" in str(err.value.user_message)
    invoice = client.v1.invoices.create(
        {
            "customer": customer.id,
            "subscription": sub.id,
            "discounts": [{"discount": discount}],  # type: ignore[list-item]
        }
    )
    assert list(invoice.discounts) == [discount]
    client.v1.invoice_items.create(
        {"customer": customer.id, "invoice": invoice.id, "amount": 1000, "currency": "usd"}
    )  # type: ignore[typeddict-item]
    draft = client.v1.invoices.retrieve(invoice.id)
    assert (draft.subtotal, draft.total) == (1000, 750)
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1
    # The draft keeps it on update too.
    again = client.v1.invoices.update(invoice.id, {"discounts": [{"discount": discount}]})  # type: ignore[list-item]
    assert (list(again.discounts), again.total) == ([discount], 750)


def test_a_new_invoice_item_reuses_no_discount(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"percent_off": 25, "duration": "forever"})
    _, customer, sub = _subscribed(client, coupon.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoice_items.create(
            {
                "customer": customer.id,
                "amount": 100,
                "currency": "usd",
                "discounts": [{"discount": sub.discounts[0]}],  # type: ignore[list-item]
            }
        )
    assert err.value.param == "discounts[0][discount]"
    assert "can only be applied to an invoice item when" in str(err.value.user_message)
    assert client.v1.invoice_items.list({"customer": customer.id, "pending": True}).data == []
