"""Products and prices through the official SDK over real HTTP."""

from collections.abc import Callable

import pytest
import stripe


def test_product_crud_and_events(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    product = client.v1.products.create(params={"name": "Premium", "metadata": {"tier": "p"}})
    assert product.id.startswith("prod_")
    assert product.active is True
    assert product.metadata["tier"] == "p"
    updated = client.v1.products.update(product.id, params={"description": "Best tier"})
    assert updated.description == "Best tier"
    assert client.v1.products.retrieve(product.id).description == "Best tier"
    listed = client.v1.products.list(params={"active": True})
    assert [p.id for p in listed.data] == [product.id]
    deleted = client.v1.products.delete(product.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.products.retrieve(product.id)
    assert missing.value.code == "resource_missing"
    assert event_types() == ["product.created", "product.updated", "product.deleted"]


def test_product_with_prices_cannot_be_deleted(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "Free"})
    client.v1.prices.create(params={"product": product.id, "unit_amount": 0, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError, match="prices"):
        client.v1.products.delete(product.id)


def test_product_requires_name(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.products.create(params={})  # type: ignore[typeddict-item]
    assert err.value.code == "parameter_missing"
    assert err.value.param == "name"


def test_recurring_price_with_lookup_key(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create(
        params={
            "product_data": {"name": "Premium"},
            "unit_amount": 999,
            "currency": "USD",
            "recurring": {"interval": "month"},
            "lookup_key": "premium_monthly",
        }
    )
    assert price.type == "recurring"
    assert price.currency == "usd"
    assert price.unit_amount == 999
    assert str(price.unit_amount_decimal) == "999"
    assert price.recurring is not None
    assert (price.recurring.interval, price.recurring.interval_count) == ("month", 1)
    assert client.v1.products.retrieve(str(price.product)).name == "Premium"
    found = client.v1.prices.list(params={"lookup_keys": ["premium_monthly", "nope"]})
    assert [p.id for p in found.data] == [price.id]


def test_lookup_key_conflict_and_transfer(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    product = client.v1.products.create(params={"name": "Premium"})
    first = client.v1.prices.create(
        params={"product": product.id, "unit_amount": 999, "currency": "usd", "lookup_key": "k"}
    )
    with pytest.raises(stripe.InvalidRequestError) as conflict:
        client.v1.prices.create(
            params={
                "product": product.id,
                "unit_amount": 1099,
                "currency": "usd",
                "lookup_key": "k",
            }
        )
    assert conflict.value.param == "lookup_key"
    second = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 1099,
            "currency": "usd",
            "lookup_key": "k",
            "transfer_lookup_key": True,
        }
    )
    assert second.lookup_key == "k"
    assert client.v1.prices.retrieve(first.id).lookup_key is None
    assert "price.updated" in event_types()


def test_one_time_price_and_list_filters(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "Setup fee"})
    one_time = client.v1.prices.create(
        params={"product": product.id, "unit_amount": 5000, "currency": "usd"}
    )
    yearly = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 9900,
            "currency": "usd",
            "recurring": {"interval": "year"},
        }
    )
    assert one_time.type == "one_time"
    assert one_time.recurring is None
    ids = lambda page: [p.id for p in page.data]  # noqa: E731
    assert ids(client.v1.prices.list(params={"type": "one_time"})) == [one_time.id]
    assert ids(client.v1.prices.list(params={"recurring": {"interval": "year"}})) == [yearly.id]
    assert ids(client.v1.prices.list(params={"product": product.id})) == [yearly.id, one_time.id]
    archived = client.v1.prices.update(one_time.id, params={"active": False})
    assert archived.active is False
    assert ids(client.v1.prices.list(params={"active": True})) == [yearly.id]


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"unit_amount": 100, "currency": "usd"}, "product", "parameter_missing"),
        (
            {"product": "prod_missing", "unit_amount": 100, "currency": "usd"},
            "product",
            "resource_missing",
        ),
        ({"product_data": {"name": "x"}, "currency": "usd"}, "unit_amount", "parameter_missing"),
        (
            {
                "product_data": {"name": "x"},
                "unit_amount": 100,
                "currency": "usd",
                "recurring": {"interval": "fortnight"},
            },
            "recurring[interval]",
            None,
        ),
        (
            {"product_data": {"name": "x"}, "unit_amount": 100, "currency": "usd", "bogus": 1},
            "bogus",
            "parameter_unknown",
        ),
    ],
)
def test_price_errors(
    client: stripe.StripeClient, params: dict[str, object], param: str, code: str | None
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(params=params)  # type: ignore[arg-type]
    assert err.value.param == param
    if code is not None:
        assert err.value.code == code
