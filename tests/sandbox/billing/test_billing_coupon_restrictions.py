"""Coupons restricted to products (``applies_to``) and amount-off coupons in other
currencies (``currency_options``), official SDK over real HTTP."""

from __future__ import annotations

import pytest
import stripe
from helpers import at, customer_with_card, monthly_price


def _price(client: stripe.StripeClient, product: str, amount: int, currency: str) -> stripe.Price:
    return client.v1.prices.create(
        {
            "product": product,
            "unit_amount": amount,
            "currency": currency,
            "recurring": {"interval": "month"},
        }
    )


def test_applies_to_discounts_only_lines_of_those_products(client: stripe.StripeClient) -> None:
    seats = client.v1.products.create({"name": "Seats"})
    storage = client.v1.products.create({"name": "Storage"})
    coupon = client.v1.coupons.create(
        {"percent_off": 50, "duration": "forever", "applies_to": {"products": [seats.id]}}
    )
    assert client.v1.coupons.retrieve(
        coupon.id, {"expand": ["applies_to"]}
    ).applies_to.products == [seats.id]  # type: ignore[union-attr]
    amount = client.v1.coupons.create(
        {
            "amount_off": 5000,
            "currency": "usd",
            "duration": "forever",
            "applies_to": {"products": [storage.id]},
        }
    )
    customer = customer_with_card(client)
    sub = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [
                {"price": _price(client, seats.id, 1000, "usd").id},
                {"price": _price(client, storage.id, 600, "usd").id},
            ],
            "discounts": [{"coupon": coupon.id}, {"coupon": amount.id}],
        }
    )
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)  # type: ignore[arg-type]
    percent_id, amount_id = sub.discounts
    by_line = [
        [(a.discount, a.amount) for a in line.discount_amounts or []] for line in invoice.lines.data
    ]
    # 50 % of the seats line only; the 50.00 off stops at the storage line's 6.00.
    assert by_line == [[(percent_id, 500)], [(amount_id, 600)]]
    assert [(a.discount, a.amount) for a in invoice.total_discount_amounts or []] == [
        (percent_id, 500),
        (amount_id, 600),
    ]
    assert (invoice.subtotal, invoice.total, invoice.amount_paid) == (1600, 500, 500)


def test_applies_to_names_existing_products(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.coupons.create({"percent_off": 5, "applies_to": {"products": ["prod_nope"]}})
    assert (err.value.code, err.value.param) == ("resource_missing", "applies_to[products][0]")


def test_amount_off_coupon_in_another_currency_uses_its_currency_options(
    client: stripe.StripeClient,
) -> None:
    coupon = client.v1.coupons.create(
        {
            "amount_off": 500,
            "currency": "usd",
            "duration": "forever",
            "currency_options": {"eur": {"amount_off": 450}},
        }
    )
    assert client.v1.coupons.retrieve(coupon.id).to_dict().get("currency_options") is None
    options = client.v1.coupons.retrieve(coupon.id, {"expand": ["currency_options"]})
    assert options.to_dict()["currency_options"] == {
        "usd": {"amount_off": 500},
        "eur": {"amount_off": 450},
    }
    product = client.v1.products.create({"name": "Plan"})
    customer = customer_with_card(client)
    sub = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": _price(client, product.id, 2000, "eur").id}],
            "discounts": [{"coupon": coupon.id}],
        }
    )
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)  # type: ignore[arg-type]
    assert (invoice.currency, invoice.subtotal, invoice.total) == ("eur", 2000, 1550)
    assert [a.amount for a in invoice.total_discount_amounts or []] == [450]
    # A currency added later applies too.
    client.v1.coupons.update(coupon.id, {"currency_options": {"gbp": {"amount_off": 400}}})
    gbp = client.v1.coupons.retrieve(coupon.id, {"expand": ["currency_options"]})
    assert gbp.to_dict()["currency_options"]["gbp"] == {"amount_off": 400}


def test_amount_off_coupon_without_the_currency_is_refused(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"amount_off": 500, "currency": "usd"})
    product = client.v1.products.create({"name": "Plan"})
    customer = customer_with_card(client)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create(
            {
                "customer": customer.id,
                "items": [{"price": _price(client, product.id, 2000, "eur").id}],
                "discounts": [{"coupon": coupon.id}],
            }
        )
    assert (err.value.http_status, err.value.param) == (400, "discounts[0][coupon]")
    assert "eur" in str(err.value.user_message)
    assert client.v1.subscriptions.list({"customer": customer.id}).data == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"percent_off": 10, "currency_options": {"eur": {"amount_off": 1}}}, "currency_options"),
        (
            {"amount_off": 10, "currency": "usd", "currency_options": {"eur": {"amount_off": 0}}},
            "currency_options[eur][amount_off]",
        ),
        (
            {"amount_off": 10, "currency": "usd", "currency_options": {"euro": {"amount_off": 1}}},
            "currency_options",
        ),
    ],
)
def test_currency_options_validation(
    client: stripe.StripeClient, params: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.coupons.create(params)  # type: ignore[arg-type]
    assert (err.value.http_status, err.value.param) == (400, param)


def test_product_restricted_coupon_on_a_prorating_change(client: stripe.StripeClient) -> None:
    """The restriction holds for prorations too: the other product's item prorates in
    full."""
    seats = client.v1.products.create({"name": "Seats"})
    coupon = client.v1.coupons.create(
        {"percent_off": 50, "duration": "forever", "applies_to": {"products": [seats.id]}}
    )
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": at(2026, 1, 1)})
    customer = customer_with_card(client, clock=clock.id)
    other = monthly_price(client, 3100, "Storage")
    sub = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": _price(client, seats.id, 3100, "usd").id}, {"price": other.id}],
            "discounts": [{"coupon": coupon.id}],
        }
    )
    storage_item = next(i for i in sub["items"].data if i.price.id == other.id)
    preview = client.v1.invoices.create_preview(
        {
            "customer": customer.id,
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": storage_item.id, "quantity": 2}],
                "proration_behavior": "always_invoice",
                "proration_date": at(2026, 1, 11),
            },
        }
    )
    # Storage is not discounted: unused 3100 x 21/31 = 2100, remaining 6200 x 21/31 = 4200.
    assert [(line.amount, line.discounts) for line in preview.lines.data] == [
        (-2100, []),
        (4200, []),
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"amount_off": 10, "currency": "usd", "currency_options": "eur"},
        {"amount_off": 10, "currency": "usd", "currency_options": {"eur": "450"}},
        {"amount_off": 10, "currency": "usd", "currency_options": {"eur": {"amount_off": "x"}}},
        {"amount_off": 10, "currency": "usd", "currency_options": {"€ur": {"amount_off": 1}}},
        {"amount_off": 10, "currency": "usd", "currency_options": {"eur": {"amount_off": 10**12}}},
        {"percent_off": 10, "applies_to": "prod_x"},
        {"percent_off": 10, "applies_to": {"products": [{"id": "prod_x"}]}},
    ],
)
def test_poison_coupon_restrictions_are_refused_not_crashing(
    client: stripe.StripeClient, params: dict[str, object]
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.coupons.create(params)  # type: ignore[arg-type]
    assert err.value.http_status in (400, 404)
    assert err.value.param is not None
    assert client.v1.coupons.list().data == []


@pytest.mark.parametrize(
    "extra",
    [
        {"billing_mode": "flexible"},
        {"billing_mode": {"type": "flexible", "flexible": "itemized"}},
        {"discounts": [{"discount": ""}]},
        {"discounts": [{"discount": {"id": "di_x"}}]},
        {"discounts": [{"discount": "di_" + "x" * 5000}]},
    ],
)
def test_poison_subscription_discount_parameters(
    client: stripe.StripeClient, extra: dict[str, object]
) -> None:
    customer = customer_with_card(client)
    price = monthly_price(client, 1000)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": price.id}], **extra}  # type: ignore[typeddict-item]
        )
    assert err.value.http_status in (400, 404)
    assert client.v1.subscriptions.list({"customer": customer.id}).data == []
