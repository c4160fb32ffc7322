"""Billing objects served over HTTP carry the keys of Stripe's samples, recursively.

Uses the core's comparison (tests/sandbox/sandbox_shapes.py) on objects created
through the SDK, including the nested items, plans, lines and parents.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from sandbox_shapes import key_differences, sample
from tests.sandbox.billing.helpers import advance, at, clocked_subscription, monthly_price

# Sub-hashes whose keys depend on their ``type``: Stripe's sample shows only ``type``,
# real objects also carry the member it names (``payment.payment_intent`` when
# ``type=payment_intent``, ``pricing.price_details`` when ``type=price_details``).
TYPE_DEPENDENT = frozenset({"extra payment.payment_intent", "extra pricing.price_details"})


def assert_same_keys(obj: Any, resource: str) -> None:
    problems = [
        p for p in key_differences(obj.to_dict(), sample(resource)) if p not in TYPE_DEPENDENT
    ]
    assert not problems, f"{resource}: " + ", ".join(problems)


def _objects(client: stripe.StripeClient) -> dict[str, Any]:
    clock, customer, sub = clocked_subscription(client)
    advance(client, clock.id, at(2026, 1, 16))
    bigger = monthly_price(client, 2999, "Enterprise")
    sub = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": bigger.id}],
            "proration_behavior": "create_prorations",
        },
    )
    item = client.v1.invoice_items.list(params={"customer": customer.id}).data[0]
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    payment = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]
    line = client.v1.invoices.line_items.list(invoice.id).data[0]
    price = client.v1.prices.retrieve(bigger.id)
    product = client.v1.products.retrieve(str(price.product))
    sub_item = client.v1.subscription_items.retrieve(sub["items"].data[0].id)
    return {
        "subscription": sub,
        "subscription_item": sub_item,
        "invoice": invoice,
        "invoice_payment": payment,
        "invoiceitem": item,
        "line_item": line,
        "price": price,
        "product": product,
        "test_helpers.test_clock": client.v1.test_helpers.test_clocks.retrieve(clock.id),
    }


@pytest.fixture
def objects(client: stripe.StripeClient) -> dict[str, Any]:
    return _objects(client)


@pytest.mark.parametrize(
    "resource",
    [
        "subscription",
        "subscription_item",
        "invoice",
        "invoice_payment",
        "invoiceitem",
        "line_item",
        "price",
        "product",
        "test_helpers.test_clock",
    ],
)
def test_billing_keys_match_stripe_sample(objects: dict[str, Any], resource: str) -> None:
    obj = objects[resource]
    assert obj.object == resource
    assert_same_keys(obj, resource)


def test_billing_ids_use_stripe_prefixes(objects: dict[str, Any]) -> None:
    prefixes = {
        "subscription": "sub_",
        "subscription_item": "si_",
        "invoice": "in_",
        "invoiceitem": "ii_",
        "line_item": "il_",
        "price": "price_",
        "product": "prod_",
        "test_helpers.test_clock": "clock_",
    }
    for resource, prefix in prefixes.items():
        assert objects[resource].id.startswith(prefix), resource
