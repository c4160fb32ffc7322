"""Issue 3's "done when", end to end with nothing but the official SDK.

Create the three tiers, a customer with each test card, a subscription; upgrade it;
advance a test clock through a renewal and a failed renewal; refund a payment
partially; open a dispute — and receive every resulting event, signed, at a
registered webhook endpoint (verified with ``stripe.Webhook.construct_event``).
"""

from __future__ import annotations

import time

import pytest
import stripe
from sandbox_testkit import WebhookReceiver
from tests.sandbox.billing.helpers import advance, at

TEST_CARDS = [
    "pm_card_visa",
    "pm_card_visa_chargeDeclined",
    "pm_card_visa_chargeDeclinedInsufficientFunds",
    "pm_card_chargeDeclinedExpiredCard",
    "pm_card_chargeDeclinedIncorrectCvc",
    "pm_card_chargeCustomerFail",
    "pm_card_authenticationRequired",
    "pm_card_threeDSecure2Required",
    "pm_card_createDispute",
    "pm_card_createDisputeInquiry",
]
TIERS = [("Free", 0, "free_monthly"), ("Premium", 999, "premium_monthly"),
         ("Enterprise", 2999, "enterprise_monthly")]  # fmt: skip


def _all_events(client: stripe.StripeClient) -> list[stripe.Event]:
    return list(client.v1.events.list(params={"limit": 100}).auto_paging_iter())


def _tiers(client: stripe.StripeClient) -> dict[str, stripe.Price]:
    for name, amount, key in TIERS:
        client.v1.prices.create(
            params={
                "product_data": {"name": name},
                "unit_amount": amount,
                "currency": "usd",
                "recurring": {"interval": "month"},
                "lookup_key": key,
            }
        )
    found = client.v1.prices.list(params={"lookup_keys": [key for _, _, key in TIERS]})
    return {str(p.lookup_key): p for p in found.data}


def test_issue_3_done_when(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    client = stripe_client
    webhook_receiver.register(client)
    tiers = _tiers(client)
    assert sorted(p.unit_amount or 0 for p in tiers.values()) == [0, 999, 2999]

    # A customer with each test card: cards that cannot be attached are refused with 402.
    attached = {}
    for card in TEST_CARDS:
        try:
            customer = client.v1.customers.create(
                params={"email": f"{card}@example.com", "payment_method": card}
            )
        except stripe.CardError:
            continue
        attached[card] = customer
    assert {"pm_card_visa", "pm_card_chargeCustomerFail", "pm_card_createDispute"} <= set(attached)

    # The subscriber lives on a test clock so renewals can be driven.
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": at(2026, 1, 1)})
    subscriber = client.v1.customers.create(
        params={
            "email": "subscriber@example.com",
            "test_clock": clock.id,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    free = client.v1.subscriptions.create(
        params={
            "customer": attached["pm_card_chargeCustomerFail"].id,
            "items": [{"price": tiers["free_monthly"].id}],
        }
    )
    assert free.status == "active"
    sub = client.v1.subscriptions.create(
        params={"customer": subscriber.id, "items": [{"price": tiers["premium_monthly"].id}]}
    )
    assert sub.status == "active"

    # Upgrade mid-period, invoicing the proration at once.
    advance(client, clock.id, at(2026, 1, 16))
    upgraded = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": tiers["enterprise_monthly"].id}],
            "proration_behavior": "always_invoice",
        },
    )
    upgrade_invoice = client.v1.invoices.retrieve(str(upgraded.latest_invoice))
    assert (upgrade_invoice.status, upgrade_invoice.amount_paid) == ("paid", 1032)

    # A successful renewal...
    advance(client, clock.id, at(2026, 2, 1, 2))
    renewal = client.v1.invoices.retrieve(
        str(client.v1.subscriptions.retrieve(sub.id).latest_invoice),
        params={"expand": ["payments"]},
    )
    assert (renewal.status, renewal.amount_paid) == ("paid", 2999)
    renewal_intent = str(renewal.payments.data[0].payment.payment_intent)

    # ...then a failed one.
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": subscriber.id}
    )
    client.v1.customers.update(
        subscriber.id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )
    advance(client, clock.id, at(2026, 3, 1, 2))
    failed = client.v1.invoices.retrieve(
        str(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    )
    assert (failed.status, failed.attempt_count) == ("open", 1)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"

    # Refund the renewal partially; open a dispute with the dispute card.
    refund = client.v1.refunds.create(params={"payment_intent": renewal_intent, "amount": 500})
    assert (refund.status, refund.amount) == ("succeeded", 500)
    dispute_customer = attached["pm_card_createDispute"].id
    dispute_card = client.v1.payment_methods.list(params={"customer": dispute_customer}).data[0]
    disputed = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "customer": dispute_customer,
            "payment_method": dispute_card.id,
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    assert disputed.status == "succeeded"
    webhook_receiver.wait_for("charge.dispute.created")

    # Every event the sandbox recorded arrives signed at the endpoint.
    wanted = {
        "product.created", "price.created", "customer.created", "payment_method.attached",
        "customer.subscription.created", "customer.subscription.updated",
        "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded",
        "invoice_payment.paid", "invoice.payment_failed", "invoiceitem.created",
        "payment_intent.succeeded", "payment_intent.payment_failed", "charge.succeeded",
        "charge.failed", "charge.refunded", "refund.created", "charge.dispute.created",
        "test_helpers.test_clock.created", "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
    }  # fmt: skip
    recorded = _all_events(client)
    assert wanted <= {e.type for e in recorded}
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow
    while time.monotonic() < deadline:
        received = {e.id for e in webhook_receiver.events}
        if {e.id for e in recorded} <= received:
            break
        time.sleep(0.05)
    missing = {e.type for e in recorded if e.id not in {r.id for r in webhook_receiver.events}}
    assert not missing, f"not delivered: {sorted(missing)}"
    assert webhook_receiver.bad_signatures == 0
    past_due = [
        e
        for e in webhook_receiver.events
        if e.type == "customer.subscription.updated" and e.data.object["status"] == "past_due"
    ]
    assert past_due, "the failed renewal's past_due update was not delivered"
    assert client.v1.disputes.list(params={"payment_intent": disputed.id}).data


@pytest.mark.parametrize("behavior", ["create_prorations", "none"])
def test_tier_change_behaviors_keep_the_subscription_active(
    stripe_client: stripe.StripeClient, behavior: str
) -> None:
    client = stripe_client
    tiers = _tiers(client)
    customer = client.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": tiers["free_monthly"].id}]}
    )
    changed = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": tiers["premium_monthly"].id}],
            "proration_behavior": behavior,  # type: ignore[typeddict-item]
        },
    )
    assert changed.status == "active"
    assert changed["items"].data[0].price.lookup_key == "premium_monthly"
