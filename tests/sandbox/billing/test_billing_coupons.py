"""Coupons and promotion codes, and the customer's billing state following invoicing
(official SDK over real HTTP; shapes against Stripe's sample objects)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import stripe
from helpers import advance, at, customer_with_card, monthly_price
from sandbox_shapes import assert_same_keys


# ---- coupons --------------------------------------------------------------------
def test_coupon_lifecycle_and_shape(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    percent = client.v1.coupons.create(
        {"percent_off": 25.5, "duration": "repeating", "duration_in_months": 3, "name": "Fall"}
    )
    assert_same_keys(percent.to_dict(), "coupon")
    assert (percent.percent_off, percent.amount_off, percent.currency) == (25.5, None, None)
    assert (percent.duration, percent.duration_in_months, percent.valid) == ("repeating", 3, True)
    assert len(percent.id) == 8
    amount = client.v1.coupons.create(
        {"id": "FIVE", "amount_off": 500, "currency": "USD", "max_redemptions": 2}
    )
    assert (amount.id, amount.amount_off, amount.currency, amount.duration) == (
        "FIVE",
        500,
        "usd",
        "once",
    )
    updated = client.v1.coupons.update("FIVE", {"name": "Five off", "metadata": {"k": "v"}})
    assert (updated.name, updated.metadata.to_dict()) == ("Five off", {"k": "v"})
    assert [c.id for c in client.v1.coupons.list().data] == ["FIVE", percent.id]
    assert client.v1.coupons.retrieve(percent.id).name == "Fall"
    applies = client.v1.coupons.retrieve("FIVE", {"expand": ["applies_to"]})
    assert applies.applies_to is not None
    assert applies.applies_to.products == []
    deleted = client.v1.coupons.delete("FIVE")
    assert deleted.to_dict() == {"id": "FIVE", "object": "coupon", "deleted": True}
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.coupons.retrieve("FIVE")
    assert missing.value.http_status == 404
    assert [t for t in event_types() if t.startswith("coupon.")] == [
        "coupon.created",
        "coupon.created",
        "coupon.updated",
        "coupon.deleted",
    ]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"duration": "once"}, "percent_off"),
        ({"percent_off": 10, "amount_off": 100, "currency": "usd"}, "amount_off"),
        ({"percent_off": 101}, "percent_off"),
        ({"amount_off": 100}, "currency"),
        ({"percent_off": 10, "duration": "repeating"}, "duration_in_months"),
        ({"percent_off": 10, "duration": "forever", "duration_in_months": 2}, "duration_in_months"),
    ],
)
def test_coupon_validation(
    client: stripe.StripeClient, params: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.coupons.create(params)  # type: ignore[arg-type]
    assert err.value.http_status == 400
    assert err.value.param == param


def test_coupon_ids_are_unique(client: stripe.StripeClient) -> None:
    client.v1.coupons.create({"id": "SAME", "percent_off": 5})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.coupons.create({"id": "SAME", "percent_off": 5})
    assert err.value.code == "resource_already_exists"


# ---- promotion codes --------------------------------------------------------------
def test_promotion_code_lifecycle_and_shape(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"percent_off": 20, "duration": "forever"})
    customer = client.v1.customers.create({"email": "p@example.com"})
    code = client.v1.promotion_codes.create(
        {
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": "FALL20",
            "customer": customer.id,
            "max_redemptions": 5,
            "restrictions": {
                "first_time_transaction": True,
                "minimum_amount": 1000,
                "minimum_amount_currency": "usd",
            },
        }
    )
    assert_same_keys(code.to_dict(), "promotion_code")
    assert code.id.startswith("promo_")
    assert (code.code, code.active, code.customer, code.times_redeemed) == (
        "FALL20",
        True,
        customer.id,
        0,
    )
    assert code.promotion.coupon == coupon.id
    assert code.restrictions.minimum_amount == 1000
    generated = client.v1.promotion_codes.create({"promotion": {"coupon": coupon.id}})
    assert len(generated.code) == 8
    assert [c.id for c in client.v1.promotion_codes.list({"code": "fall20"}).data] == [code.id]
    assert len(client.v1.promotion_codes.list({"coupon": coupon.id}).data) == 2
    off = client.v1.promotion_codes.update(code.id, {"active": False})
    assert off.active is False
    assert [c.id for c in client.v1.promotion_codes.list({"active": True}).data] == [generated.id]
    expanded = client.v1.promotion_codes.retrieve(code.id, {"expand": ["promotion.coupon"]})
    assert expanded.promotion.coupon.percent_off == 20  # type: ignore[union-attr]
    with pytest.raises(stripe.InvalidRequestError) as dup:
        client.v1.promotion_codes.create(
            {"promotion": {"coupon": coupon.id}, "code": generated.code}
        )
    assert dup.value.code == "resource_already_exists"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.promotion_codes.create({"promotion": {"coupon": "nope"}})
    assert missing.value.http_status == 404


# ---- the customer's billing state follows invoicing --------------------------------
def test_customer_currency_and_invoice_sequence_follow_invoicing(
    client: stripe.StripeClient,
) -> None:
    customer = customer_with_card(client)
    assert (customer.currency, customer.next_invoice_sequence) == (None, 1)
    price = monthly_price(client, 1500)
    sub = client.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}]})
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert invoice.status == "paid"
    after = client.v1.customers.retrieve(customer.id)
    assert after.currency == "usd"
    assert after.next_invoice_sequence == 2
    assert invoice.number == f"{after.invoice_prefix}-0001"
    # The sequence is the customer's: setting it numbers the next invoice.
    client.v1.customers.update(customer.id, {"next_invoice_sequence": 7})
    client.v1.invoice_items.create({"customer": customer.id, "amount": 300, "currency": "usd"})
    manual = client.v1.invoices.create(
        {"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    finalized = client.v1.invoices.finalize_invoice(manual.id)
    assert finalized.number == f"{after.invoice_prefix}-0007"
    assert client.v1.customers.retrieve(customer.id).next_invoice_sequence == 8


# ---- discounts on subscriptions and their invoices ------------------------------------
def _discounted(
    client: stripe.StripeClient, amount: int, discounts: list[dict[str, str]]
) -> tuple[str, stripe.Customer, stripe.Subscription]:
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": at(2026, 1, 1)})
    customer = customer_with_card(client, clock=clock.id)
    price = monthly_price(client, amount)
    sub = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}], "discounts": discounts}  # type: ignore[typeddict-item]
    )
    return clock.id, customer, sub


def _invoices(client: stripe.StripeClient, sub_id: str) -> list[stripe.Invoice]:
    return list(reversed(client.v1.invoices.list({"subscription": sub_id}).data))


def test_percent_coupon_repeating_discounts_invoices_until_it_ends(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    coupon = client.v1.coupons.create(
        {"percent_off": 25.5, "duration": "repeating", "duration_in_months": 2}
    )
    clock, customer, sub = _discounted(client, 1999, [{"coupon": coupon.id}])
    assert len(sub.discounts) == 1
    discount_id = sub.discounts[0]
    assert isinstance(discount_id, str)
    discount = client.v1.subscriptions.retrieve(sub.id, {"expand": ["discounts"]}).discounts[0]
    assert_same_keys(discount.to_dict(), "discount")  # type: ignore[union-attr]
    assert discount.source.coupon == coupon.id  # type: ignore[union-attr]
    assert (discount.start, discount.end) == (at(2026, 1, 1), at(2026, 3, 1))  # type: ignore[union-attr]
    first = _invoices(client, sub.id)[0]
    # 25.5 % of 19.99 = 5.097 -> 510 (half up); total 1489, paid.
    assert (first.subtotal, first.total, first.amount_paid) == (1999, 1489, 1489)
    assert list(first.discounts) == [discount_id]
    assert [(a.amount, a.discount) for a in first.total_discount_amounts or []] == [
        (510, discount_id)
    ]
    line = first.lines.data[0]
    assert [(a.amount, a.discount) for a in line.discount_amounts or []] == [(510, discount_id)]
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1
    advance(client, clock, at(2026, 2, 1, 2))
    advance(client, clock, at(2026, 3, 1, 2))
    totals = [(i.subtotal, i.total) for i in _invoices(client, sub.id)]
    assert totals == [(1999, 1489), (1999, 1489), (1999, 1999)]
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []
    types = event_types()
    assert types.count("customer.discount.created") == 1
    assert types.count("customer.discount.deleted") == 1
    assert customer.id


def test_once_amount_coupon_through_a_promotion_code(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"amount_off": 700, "currency": "usd"})
    promo = client.v1.promotion_codes.create(
        {"promotion": {"coupon": coupon.id}, "code": "WELCOME", "max_redemptions": 1}
    )
    clock, _, sub = _discounted(client, 1000, [{"promotion_code": promo.id}])
    # A once discount ends with the first invoice it reduced.
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []
    first = client.v1.invoices.retrieve(str(sub.latest_invoice), {"expand": ["discounts"]})
    assert first.discounts[0].promotion_code == promo.id  # type: ignore[union-attr]
    advance(client, clock, at(2026, 2, 1, 2))
    totals = [(i.total, i.amount_paid) for i in _invoices(client, sub.id)]
    assert totals == [(300, 300), (1000, 1000)]
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []
    used = client.v1.promotion_codes.retrieve(promo.id)
    assert used.times_redeemed == 1
    # Redemption limit reached: the code cannot be used again.
    with pytest.raises(stripe.InvalidRequestError) as err:
        _discounted(client, 1000, [{"promotion_code": promo.id}])
    assert err.value.param == "discounts[0][promotion_code]"


def test_forever_coupon_and_promotion_code_restrictions(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"percent_off": 100, "duration": "forever"})
    minimum = client.v1.promotion_codes.create(
        {
            "promotion": {"coupon": coupon.id},
            "restrictions": {"minimum_amount": 5000, "minimum_amount_currency": "usd"},
        }
    )
    with pytest.raises(stripe.InvalidRequestError, match="minimum"):
        _discounted(client, 1000, [{"promotion_code": minimum.id}])
    assert client.v1.promotion_codes.retrieve(minimum.id).times_redeemed == 0
    clock, _, sub = _discounted(client, 1000, [{"coupon": coupon.id}])
    advance(client, clock, at(2026, 2, 1, 2))
    invoices = _invoices(client, sub.id)
    assert [(i.total, i.status) for i in invoices] == [(0, "paid"), (0, "paid")]
    limited = client.v1.coupons.create({"percent_off": 10, "max_redemptions": 1})
    _discounted(client, 1000, [{"coupon": limited.id}])
    assert client.v1.coupons.retrieve(limited.id).valid is False
    with pytest.raises(stripe.InvalidRequestError, match="no longer valid"):
        _discounted(client, 1000, [{"coupon": limited.id}])


def test_invoice_discounts_on_create_and_update(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    five = client.v1.coupons.create({"amount_off": 500, "currency": "usd"})
    half = client.v1.coupons.create({"percent_off": 50})
    client.v1.invoice_items.create({"customer": customer.id, "amount": 3000, "currency": "usd"})
    client.v1.invoice_items.create({"customer": customer.id, "amount": 1000, "currency": "usd"})
    invoice = client.v1.invoices.create(
        {
            "customer": customer.id,
            "pending_invoice_items_behavior": "include",
            "discounts": [{"coupon": five.id}],
        }
    )
    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (4000, 3500, 3500)
    # amount_off spread over the lines in proportion: 375 + 125.
    shares = sorted(a.amount for line in invoice.lines.data for a in line.discount_amounts or [])
    assert shares == [125, 375]
    updated = client.v1.invoices.update(invoice.id, {"discounts": [{"coupon": half.id}]})
    assert (updated.total, len(updated.discounts)) == (2000, 1)
    paid = client.v1.invoices.pay(invoice.id)
    assert (paid.status, paid.amount_paid) == ("paid", 2000)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.update(invoice.id, {"discounts": [{"coupon": five.id}]})
    assert err.value.code == "invoice_not_editable"


def test_subscription_update_replaces_discounts(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, _, sub = _discounted(client, 2000, [])
    assert sub.discounts == []
    coupon = client.v1.coupons.create({"percent_off": 10, "duration": "forever"})
    updated = client.v1.subscriptions.update(sub.id, {"discounts": [{"coupon": coupon.id}]})
    assert len(updated.discounts) == 1
    advance(client, clock, at(2026, 2, 1, 2))
    assert [i.total for i in _invoices(client, sub.id)] == [2000, 1800]
    cleared = client.v1.subscriptions.update(sub.id, {"discounts": ""})  # type: ignore[typeddict-item]
    assert cleared.discounts == []
    assert event_types().count("customer.discount.deleted") == 1


def test_upcoming_invoice_preview_carries_the_subscription_discount(
    client: stripe.StripeClient,
) -> None:
    coupon = client.v1.coupons.create({"percent_off": 20, "duration": "forever"})
    _, customer, sub = _discounted(client, 2500, [{"coupon": coupon.id}])
    upcoming = client.v1.invoices.create_preview({"customer": customer.id, "subscription": sub.id})
    assert (upcoming.subtotal, upcoming.total, upcoming.amount_due) == (2500, 2000, 2000)
    assert [a.amount for a in upcoming.total_discount_amounts or []] == [500]


def test_delete_a_subscription_discount(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    coupon = client.v1.coupons.create({"percent_off": 15, "duration": "forever"})
    _, customer, sub = _discounted(client, 1000, [{"coupon": coupon.id}])
    deleted = client.v1.subscriptions.delete_discount(sub.id)
    assert_same_keys(deleted.to_dict(), "deleted_discount")
    assert deleted.deleted is True
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []
    assert event_types().count("customer.discount.deleted") == 1
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.delete_discount(sub.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.delete_discount(customer.id)


def test_invoice_item_discounts_and_non_discountable_items(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    item_coupon = client.v1.coupons.create({"amount_off": 200, "currency": "usd"})
    invoice_coupon = client.v1.coupons.create({"percent_off": 10})
    discounted = client.v1.invoice_items.create(
        {
            "customer": customer.id,
            "amount": 1000,
            "currency": "usd",
            "discounts": [{"coupon": item_coupon.id}],
        }
    )
    assert len(discounted.discounts) == 1
    client.v1.invoice_items.create(
        {"customer": customer.id, "amount": 500, "currency": "usd", "discountable": False}
    )
    invoice = client.v1.invoices.create(
        {
            "customer": customer.id,
            "pending_invoice_items_behavior": "include",
            "discounts": [{"coupon": invoice_coupon.id}],
        }
    )
    # The item's 2.00 first (1000 -> 800), then 10 % of the discountable rest (80);
    # the non-discountable 5.00 line is untouched.
    assert (invoice.subtotal, invoice.total) == (1500, 1500 - 200 - 80)
    by_line = {
        line.amount: [a.amount for a in line.discount_amounts or []] for line in invoice.lines.data
    }
    assert by_line == {1000: [200, 80], 500: []}
    assert sorted(a.amount for a in invoice.total_discount_amounts or []) == [80, 200]


def test_subscription_item_discount_applies_to_its_line_once(client: stripe.StripeClient) -> None:
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": at(2026, 1, 1)})
    customer = customer_with_card(client, clock=clock.id)
    base, addon = monthly_price(client, 3000), monthly_price(client, 1000, "Add-on")
    coupon = client.v1.coupons.create({"percent_off": 50, "duration": "once"})
    sub = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [
                {"price": base.id},
                {"price": addon.id, "discounts": [{"coupon": coupon.id}]},  # type: ignore[typeddict-item]
            ],
        }
    )
    first = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (first.subtotal, first.total) == (4000, 3500)
    by_line = {
        line.amount: [a.amount for a in line.discount_amounts or []] for line in first.lines.data
    }
    assert by_line == {3000: [], 1000: [500]}
    item = next(
        i for i in client.v1.subscriptions.retrieve(sub.id).items.data if i.price.id == addon.id
    )
    assert item.discounts == []  # a once discount ends with its first invoice
    advance(client, clock.id, at(2026, 2, 1, 2))
    assert [i.total for i in _invoices(client, sub.id)] == [3500, 4000]
