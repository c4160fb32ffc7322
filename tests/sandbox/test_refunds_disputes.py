"""Refunds (reference §4) and disputes (reference §6)."""

from __future__ import annotations

import time

import pytest
import stripe
from sandbox_testkit import WebhookReceiver


def _pay(client: stripe.StripeClient, pm: str = "pm_card_visa", amount: int = 2000) -> str:
    intent = client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": pm,
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    return intent.id


def test_partial_then_full_refund(stripe_client: stripe.StripeClient) -> None:
    intent_id = _pay(stripe_client)
    first = stripe_client.v1.refunds.create(
        params={"payment_intent": intent_id, "amount": 500, "reason": "requested_by_customer"}
    )
    assert first.status == "succeeded"
    assert first.amount == 500
    assert first.reason == "requested_by_customer"
    assert first.payment_intent == intent_id
    charge = stripe_client.v1.charges.retrieve(str(first.charge))
    assert charge.amount_refunded == 500
    assert charge.refunded is False
    rest = stripe_client.v1.refunds.create(params={"charge": charge.id})
    assert rest.amount == 1500
    charge = stripe_client.v1.charges.retrieve(charge.id)
    assert charge.amount_refunded == 2000
    assert charge.refunded is True
    listed = stripe_client.v1.refunds.list(params={"payment_intent": intent_id}).data
    assert [r.id for r in listed] == [rest.id, first.id]
    assert stripe_client.v1.refunds.retrieve(first.id).amount == 500


def test_over_refund(stripe_client: stripe.StripeClient) -> None:
    intent_id = _pay(stripe_client)
    stripe_client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1500})
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 600})
    assert info.value.param == "amount"
    assert "Refund amount ($6.00) is greater than unrefunded amount on charge ($5.00)" in str(
        info.value
    )


def test_already_refunded(stripe_client: stripe.StripeClient) -> None:
    intent_id = _pay(stripe_client)
    stripe_client.v1.refunds.create(params={"payment_intent": intent_id})
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.refunds.create(params={"payment_intent": intent_id})
    assert info.value.code == "charge_already_refunded"


def test_refund_needs_a_successful_charge(stripe_client: stripe.StripeClient) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params={"amount": 2000, "currency": "usd", "payment_method_types": ["card"]}
    )
    with pytest.raises(stripe.InvalidRequestError, match="does not have a successful charge"):
        stripe_client.v1.refunds.create(params={"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.refunds.create(params={"charge": "ch_missing"})
    assert info.value.http_status == 404
    assert info.value.param == "charge"
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.refunds.create(params={})
    assert info.value.code == "parameter_missing"


def test_bad_reason(stripe_client: stripe.StripeClient) -> None:
    intent_id = _pay(stripe_client)
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.refunds.create(
            params={"payment_intent": intent_id, "reason": "expired_uncaptured_charge"}
        )
    assert info.value.param == "reason"


def test_refund_events(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.register(
        stripe_client,
        ["charge.refunded", "refund.created", "refund.updated", "charge.refund.updated"],
    )
    intent_id = _pay(stripe_client)
    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 700})
    (charge_event,) = webhook_receiver.wait_for("charge.refunded")
    assert charge_event.data.object["amount_refunded"] == 700
    (created,) = webhook_receiver.wait_for("refund.created")
    assert created.data.object["id"] == refund.id
    stripe_client.v1.refunds.update(refund.id, params={"metadata": {"order_id": "6735"}})
    (updated,) = webhook_receiver.wait_for("charge.refund.updated")
    assert updated.data.object["metadata"].to_dict() == {"order_id": "6735"}
    webhook_receiver.wait_for("refund.updated")


def test_pending_refund_settles(stripe_client: stripe.StripeClient) -> None:
    intent_id = _pay(stripe_client, "pm_card_pendingRefund")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent_id})
    assert refund.status == "pending"
    _wait_status(stripe_client, refund.id, "succeeded")


def test_failing_refund(stripe_client: stripe.StripeClient) -> None:
    intent_id = _pay(stripe_client, "pm_card_refundFail")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent_id})
    assert refund.status == "succeeded"
    _wait_status(stripe_client, refund.id, "failed")
    charge = stripe_client.v1.charges.retrieve(str(refund.charge))
    assert charge.amount_refunded == 0
    assert stripe_client.v1.events.list(params={"type": "refund.failed"}).data


def _wait_status(client: stripe.StripeClient, refund_id: str, status: str) -> None:
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow
    while client.v1.refunds.retrieve(refund_id).status != status:
        assert time.monotonic() < deadline, f"refund never became {status}"
        time.sleep(0.02)


# ---- disputes ------------------------------------------------------------------
def _dispute(client: stripe.StripeClient, pm: str) -> stripe.Dispute:
    intent_id = _pay(client, pm)
    disputes = client.v1.disputes.list(params={"payment_intent": intent_id}).data
    assert len(disputes) == 1
    return disputes[0]


def test_fraudulent_dispute_and_winning_evidence(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.register(stripe_client)
    dispute = _dispute(stripe_client, "pm_card_createDispute")
    assert dispute.status == "needs_response"
    assert dispute.reason == "fraudulent"
    assert dispute.amount == 2000
    assert len(dispute.balance_transactions) == 1
    charge = stripe_client.v1.charges.retrieve(dispute.charge)  # type: ignore[arg-type]
    assert charge.disputed is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.refunds.create(params={"charge": charge.id})
    assert info.value.code == "charge_disputed"
    won = stripe_client.v1.disputes.update(
        dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    assert won.status == "won"
    assert won.evidence.uncategorized_text == "winning_evidence"
    for event_type in (
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ):
        webhook_receiver.wait_for(event_type)
    with pytest.raises(stripe.InvalidRequestError, match="already closed"):
        stripe_client.v1.disputes.update(dispute.id, params={"metadata": {"a": "b"}})


def test_losing_evidence(stripe_client: stripe.StripeClient) -> None:
    dispute = _dispute(stripe_client, "pm_card_createDisputeProductNotReceived")
    assert dispute.reason == "product_not_received"
    lost = stripe_client.v1.disputes.update(
        dispute.id, params={"evidence": {"uncategorized_text": "losing_evidence"}}
    )
    assert lost.status == "lost"


def test_inquiry(stripe_client: stripe.StripeClient) -> None:
    dispute = _dispute(stripe_client, "pm_card_createDisputeInquiry")
    assert dispute.status == "warning_needs_response"
    assert dispute.balance_transactions == []
    assert dispute.is_charge_refundable is True
    funds = stripe_client.v1.events.list(params={"type": "charge.dispute.funds_withdrawn"})
    assert funds.data == []
    closed = stripe_client.v1.disputes.close(dispute.id)
    assert closed.status == "warning_closed"


def test_close_chargeback_loses(stripe_client: stripe.StripeClient) -> None:
    dispute = _dispute(stripe_client, "pm_card_createDispute")
    closed = stripe_client.v1.disputes.close(dispute.id)
    assert closed.status == "lost"
    assert stripe_client.v1.events.list(params={"type": "charge.dispute.closed"}).data


def test_evidence_without_submit_keeps_status(stripe_client: stripe.StripeClient) -> None:
    dispute = _dispute(stripe_client, "pm_card_createDispute")
    updated = stripe_client.v1.disputes.update(
        dispute.id,
        params={"evidence": {"customer_name": "Jenny"}, "submit": False, "metadata": {"k": "v"}},
    )
    assert updated.status == "needs_response"
    assert updated.evidence.customer_name == "Jenny"
    assert updated.evidence_details.has_evidence is True
    assert updated.metadata.to_dict() == {"k": "v"}
    event = stripe_client.v1.events.list(params={"type": "charge.dispute.updated"}).data[0]
    assert event.data.previous_attributes is not None
    assert event.data.previous_attributes["metadata"].to_dict() == {"k": None}


def test_dispute_not_found(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.disputes.retrieve("dp_missing")
    assert "No such dispute: 'dp_missing'" in str(info.value)
