"""The builders produce exactly the top-level keys of Stripe's sample objects."""

import json
from pathlib import Path
from typing import Any

import pytest

from paydesk_sandbox.billing import shapes

FIXTURES = Path(__file__).resolve().parents[2] / "reference" / "stripe-openapi-fixtures3.json"


@pytest.fixture(scope="module")
def samples() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads(FIXTURES.read_text())["resources"]
    return resources


def _price() -> dict[str, Any]:
    return shapes.price(
        id="price_1",
        created=1,
        product_id="prod_1",
        currency="usd",
        unit_amount=999,
        recurring_hash=shapes.recurring("month", 1),
        params={},
    )


def _built() -> dict[str, dict[str, Any]]:
    price = _price()
    item = shapes.subscription_item(
        id="si_1",
        created=1,
        subscription_id="sub_1",
        price_object=price,
        quantity=1,
        period=(1, 2),
        metadata={},
    )
    customer = {"id": "cus_1"}
    return {
        "product": shapes.product(id="prod_1", created=1, name="P", params={}),
        "price": price,
        "subscription_item": item,
        "subscription": shapes.subscription(
            id="sub_1",
            created=1,
            customer_id="cus_1",
            currency="usd",
            anchor=1,
            items=[item],
            params={},
            test_clock=None,
        ),
        "invoice": shapes.invoice(
            id="in_1",
            created=1,
            customer=customer,
            currency="usd",
            billing_reason="manual",
            period=(1, 1),
            subscription_id=None,
            subscription_metadata=None,
            params={},
            test_clock=None,
        ),
        "line_item": shapes.line_item(
            id="il_1",
            invoice_id="in_1",
            amount=999,
            currency="usd",
            description=None,
            period=(1, 2),
            quantity=1,
            price_id="price_1",
            subscription_id="sub_1",
            subscription_item_id="si_1",
            invoice_item_id=None,
            proration=False,
            metadata={},
        ),
        "invoiceitem": shapes.invoice_item(
            id="ii_1",
            created=1,
            customer_id="cus_1",
            amount=5,
            currency="usd",
            description=None,
            period=(1, 2),
            proration=True,
            subscription_id="sub_1",
            price_id="price_1",
            quantity=1,
            metadata={},
            test_clock=None,
        ),
        "invoice_payment": shapes.invoice_payment(
            id="inpay_1",
            created=1,
            invoice_id="in_1",
            amount=999,
            currency="usd",
            payment_intent_id="pi_1",
        ),
        "test_helpers.test_clock": shapes.test_clock(
            id="clock_1", created=1, frozen_time=1, name=None
        ),
    }


@pytest.mark.parametrize("resource", sorted(_built()))
def test_builder_keys_match_stripe_sample(resource: str, samples: dict[str, Any]) -> None:
    built = _built()[resource]
    assert set(built) == set(samples[resource])
    assert built["object"] == samples[resource]["object"]


def test_nested_subscription_item_matches_sample(samples: dict[str, Any]) -> None:
    item = _built()["subscription"]["items"]["data"][0]
    assert set(item) == set(samples["subscription"]["items"]["data"][0])
    assert set(item["plan"]) == set(samples["subscription_item"]["plan"])


def test_nested_lists_match_sample(samples: dict[str, Any]) -> None:
    built = _built()
    assert set(built["subscription"]["items"]) == set(samples["subscription"]["items"])
    assert set(built["invoice"]["lines"]) == set(samples["invoice"]["lines"])


def test_nested_invoice_line_matches_sample(samples: dict[str, Any]) -> None:
    line = _built()["line_item"]
    assert set(line) == set(samples["invoice"]["lines"]["data"][0])
