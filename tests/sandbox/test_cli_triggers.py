"""The Stripe CLI's ``stripe trigger`` sequences for payment resources run and emit
the event they are named after (reference/stripe-cli-triggers)."""

from __future__ import annotations

import pytest
import stripe
from sandbox_testkit import TRIGGERS, replay_trigger

PAYMENT_TRIGGERS = [
    "charge.captured",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.failed",
    "charge.refund.updated",
    "charge.refunded",
    "charge.succeeded",
    "customer.created",
    "customer.deleted",
    "customer.updated",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
]


@pytest.mark.skipif(not TRIGGERS.exists(), reason="reference triggers not available")
@pytest.mark.parametrize("trigger", PAYMENT_TRIGGERS)
def test_trigger_emits_its_event(stripe_client: stripe.StripeClient, trigger: str) -> None:
    replay_trigger(stripe_client, TRIGGERS / f"{trigger}.json")
    events = stripe_client.v1.events.list(params={"type": trigger}).data
    assert events, f"{trigger} was not emitted"


def test_dispute_created_trigger_is_an_inquiry(stripe_client: stripe.StripeClient) -> None:
    results = replay_trigger(stripe_client, TRIGGERS / "charge.dispute.created.json")
    intent_id = results["payment_intent"]["id"]
    (dispute,) = stripe_client.v1.disputes.list(params={"payment_intent": intent_id}).data
    assert dispute.status == "warning_needs_response"
    assert not stripe_client.v1.events.list(params={"type": "charge.dispute.funds_withdrawn"}).data
