"""Objects carry the same keys as Stripe's sample objects (fixtures3.json)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe
from sandbox_shapes import assert_same_keys, key_differences, sample
from sandbox_testkit import WebhookReceiver


def _objects(client: stripe.StripeClient) -> dict[str, Any]:
    customer = client.v1.customers.create(
        params={"email": "shape@example.com", "payment_method": "pm_card_visa"}
    )
    intent = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_createDispute",
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    charge = client.v1.charges.retrieve(str(intent.latest_charge))
    dispute = client.v1.disputes.list(params={"payment_intent": intent.id}).data[0]
    paid = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    refund = client.v1.refunds.create(params={"payment_intent": paid.id, "amount": 100})
    setup = client.v1.setup_intents.create(params={"payment_method_types": ["card"]})
    endpoint = client.v1.webhook_endpoints.retrieve(
        client.v1.webhook_endpoints.create(
            params={"url": "https://example.com/h", "enabled_events": ["*"]}
        ).id
    )
    event = client.v1.events.list().data[0]
    pm = client.v1.payment_methods.retrieve(str(intent.payment_method))
    return {
        "customer": customer,
        "payment_intent": intent,
        "charge": charge,
        "dispute": dispute,
        "refund": refund,
        "setup_intent": setup,
        "webhook_endpoint": endpoint,
        "event": event,
        "payment_method": pm,
    }


@pytest.fixture
def objects(stripe_client: stripe.StripeClient) -> dict[str, Any]:
    return _objects(stripe_client)


@pytest.mark.parametrize(
    "resource",
    [
        "customer",
        "payment_intent",
        "charge",
        "dispute",
        "refund",
        "setup_intent",
        "webhook_endpoint",
        "event",
        "payment_method",
    ],
)
def test_keys_match_stripe_sample(objects: dict[str, Any], resource: str) -> None:
    obj = objects[resource]
    assert obj.object == resource
    assert_same_keys(obj, resource)
    assert isinstance(obj.created, int)
    assert abs(obj.created - time.time()) < 120  # Unix seconds, not milliseconds


def test_ids_use_stripe_prefixes(objects: dict[str, Any]) -> None:
    prefixes = {
        "customer": "cus_",
        "payment_intent": "pi_",
        "charge": "ch_",
        "dispute": "dp_",
        "refund": "re_",
        "setup_intent": "seti_",
        "webhook_endpoint": "we_",
        "event": "evt_",
        "payment_method": "pm_",
    }
    for resource, prefix in prefixes.items():
        assert objects[resource].id.startswith(prefix), resource


def test_event_payload_objects_have_full_shape(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.register(stripe_client)
    _objects(stripe_client)
    (event,) = webhook_receiver.wait_for("payment_intent.succeeded", count=2)[:1]
    assert_same_keys(event, "event")
    assert_same_keys(event.data.object, "payment_intent")


def test_the_comparison_catches_differences() -> None:
    good = dict(sample("refund"))
    assert key_differences(good, sample("refund")) == []
    bad = {k: v for k, v in good.items() if k != "amount"} | {"surprise": 1}
    assert key_differences(bad, sample("refund")) == ["missing amount", "extra surprise"]
