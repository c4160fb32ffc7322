"""The remaining error answers, each as the SDK sees it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from paydesk_sandbox.server import RunningSandbox


def _pi(client: stripe.StripeClient, **params: Any) -> stripe.PaymentIntent:
    base: dict[str, Any] = {"amount": 2000, "currency": "usd", "payment_method_types": ["card"]}
    return client.v1.payment_intents.create(params={**base, **params})  # type: ignore[arg-type]


def _bad_request(call: Any, *, param: str | None = None, code: str | None = None) -> str:
    with pytest.raises(stripe.InvalidRequestError) as info:
        call()
    assert info.value.http_status == 400
    if param is not None:
        assert info.value.param == param
    if code is not None:
        assert info.value.code == code
    return str(info.value.user_message)


def test_payment_method_create_errors(stripe_client: stripe.StripeClient) -> None:
    pms = stripe_client.v1.payment_methods
    _bad_request(
        lambda: pms.create(params={"type": "card"}), param="card", code="parameter_missing"
    )
    _bad_request(lambda: pms.create(params={"type": "sepa_debit"}), param="type")
    _bad_request(
        lambda: pms.create(params={"type": "card", "card": {"exp_month": 1, "exp_year": 2040}}),
        param="card[number]",
        code="parameter_missing",
    )
    with pytest.raises(stripe.CardError) as info:
        pms.create(
            params={
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 13, "exp_year": 2040},
            }
        )
    assert info.value.code == "invalid_expiry_month"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        pms.create(params={"type": "card", "card": {"token": "tok_doesNotExist"}})
    assert missing.value.http_status == 404


def test_confirm_without_payment_method(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client)
    message = _bad_request(
        lambda: stripe_client.v1.payment_intents.confirm(intent.id),
        code="payment_intent_unexpected_state",
    )
    assert "missing a payment method" in message


def test_payment_method_of_another_customer(stripe_client: stripe.StripeClient) -> None:
    alice = stripe_client.v1.customers.create()
    bob = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": alice.id})
    _bad_request(
        lambda: _pi(stripe_client, customer=bob.id, payment_method=pm.id, confirm=True),
        param="payment_method",
    )
    _bad_request(lambda: _pi(stripe_client, payment_method=pm.id, confirm=True))


def test_capture_too_much(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(
        stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual"
    )
    _bad_request(
        lambda: stripe_client.v1.payment_intents.capture(
            intent.id, params={"amount_to_capture": 2001}
        ),
        param="amount_to_capture",
    )


def test_update_after_success(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    _bad_request(
        lambda: stripe_client.v1.payment_intents.update(intent.id, params={"amount": 5000}),
        code="payment_intent_unexpected_state",
    )


def test_enum_and_type_errors(stripe_client: stripe.StripeClient) -> None:
    _bad_request(lambda: _pi(stripe_client, capture_method="later"), param="capture_method")
    _bad_request(lambda: _pi(stripe_client, confirm="maybe"), param="confirm")


def test_authentication_hook_needs_requires_action(
    sandbox: RunningSandbox, stripe_client: stripe.StripeClient
) -> None:
    intent = _pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    response = httpx.post(f"{sandbox.url}/_sandbox/3ds/{intent.id}/complete")
    assert response.status_code == 400
    assert httpx.post(f"{sandbox.url}/_sandbox/3ds/pi_missing/complete").status_code == 404
    assert httpx.post(f"{sandbox.url}/_sandbox/3ds/{intent.id}/maybe").status_code == 400


def test_refund_errors(stripe_client: stripe.StripeClient) -> None:
    paid = _pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    refunds = stripe_client.v1.refunds
    _bad_request(
        lambda: refunds.create(
            params={"payment_intent": paid.id, "charge": str(paid.latest_charge)}
        ),
        param="payment_intent",
    )
    _bad_request(
        lambda: refunds.create(params={"payment_intent": paid.id, "amount": 0}), param="amount"
    )
    held = _pi(stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual")
    _bad_request(lambda: refunds.create(params={"charge": str(held.latest_charge)}), param="charge")
    with pytest.raises(stripe.CardError) as declined:
        _pi(stripe_client, payment_method="pm_card_chargeDeclined", confirm=True)
    assert declined.value.error is not None
    failed_charge = str(declined.value.error.charge)
    _bad_request(lambda: refunds.create(params={"charge": failed_charge}), param="charge")


def test_dispute_errors(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client, payment_method="pm_card_createDispute", confirm=True)
    dispute = stripe_client.v1.disputes.list(params={"payment_intent": intent.id}).data[0]
    _bad_request(
        lambda: stripe_client.v1.disputes.update(
            dispute.id,
            params={"evidence": {"favourite_colour": "blue"}},  # type: ignore[typeddict-unknown-key]
        ),
        param="evidence[favourite_colour]",
        code="parameter_unknown",
    )
    stripe_client.v1.disputes.close(dispute.id)
    _bad_request(lambda: stripe_client.v1.disputes.close(dispute.id))


def test_webhook_endpoint_url_must_be_http(stripe_client: stripe.StripeClient) -> None:
    _bad_request(
        lambda: stripe_client.v1.webhook_endpoints.create(
            params={"url": "ftp://example.com", "enabled_events": ["*"]}
        ),
        param="url",
    )


def test_too_many_event_types(stripe_client: stripe.StripeClient) -> None:
    _bad_request(
        lambda: stripe_client.v1.events.list(params={"types": [f"t{i}" for i in range(21)]}),
        param="types",
    )


def test_setup_intent_confirm_without_payment_method(stripe_client: stripe.StripeClient) -> None:
    setup = stripe_client.v1.setup_intents.create(params={"payment_method_types": ["card"]})
    _bad_request(
        lambda: stripe_client.v1.setup_intents.confirm(setup.id),
        code="setup_intent_unexpected_state",
    )


def test_expand_too_deep(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    _bad_request(
        lambda: stripe_client.v1.customers.retrieve(customer.id, params={"expand": ["a.b.c.d.e"]}),
        param="expand",
    )
