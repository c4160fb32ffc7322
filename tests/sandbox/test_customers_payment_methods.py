"""Customers, PaymentMethods and SetupIntents."""

from __future__ import annotations

import httpx
import pytest
import stripe

from paydesk_sandbox.server import RunningSandbox


def test_customer_crud(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(
        params={"email": "jenny@example.com", "name": "Jenny", "description": "first"}
    )
    assert customer.id.startswith("cus_")
    assert customer.object == "customer"
    assert customer.livemode is False
    assert stripe_client.v1.customers.retrieve(customer.id).email == "jenny@example.com"
    updated = stripe_client.v1.customers.update(customer.id, params={"description": ""})
    assert updated.description is None
    listed = stripe_client.v1.customers.list(params={"email": "jenny@example.com"}).data
    assert [c.id for c in listed] == [customer.id]
    deleted = stripe_client.v1.customers.delete(customer.id)
    assert deleted.deleted is True
    assert stripe_client.v1.customers.retrieve(customer.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.customers.update(customer.id, params={"name": "x"})
    assert info.value.http_status == 404
    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types == ["customer.deleted", "customer.updated", "customer.created"]


def test_customer_with_payment_method_and_default(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    default = customer.invoice_settings.default_payment_method  # type: ignore[union-attr]
    assert isinstance(default, str)
    methods = stripe_client.v1.payment_methods.list(params={"customer": customer.id}).data
    assert [m.id for m in methods] == [default]  # the same card, attached once
    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types == ["payment_method.attached", "customer.created"]


def test_customer_default_must_be_attached(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.create(
        params={"type": "card", "card": {"token": "tok_visa"}}
    )
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.customers.update(
            customer.id, params={"invoice_settings": {"default_payment_method": pm.id}}
        )
    assert info.value.param == "invoice_settings[default_payment_method]"
    stripe_client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    updated = stripe_client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    assert updated.invoice_settings.default_payment_method == pm.id  # type: ignore[union-attr]


def test_customer_on_unknown_test_clock(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.customers.create(params={"test_clock": "clock_missing"})
    assert info.value.param == "test_clock"


def test_payment_method_from_number_keeps_no_number(
    sandbox: RunningSandbox, stripe_client: stripe.StripeClient
) -> None:
    pm = stripe_client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000000000009995", "exp_month": 8, "exp_year": 2031, "cvc": "123"},
            "billing_details": {"name": "Jenny Rosen"},
        }
    )
    assert pm.card is not None
    assert pm.card.last4 == "9995"
    assert pm.card.brand == "visa"
    assert pm.card.exp_month == 8
    assert pm.card.exp_year == 2031
    assert pm.billing_details.name == "Jenny Rosen"
    dumped = sandbox.state.snapshot()
    assert b"4000000000009995" not in dumped
    intent_error = None
    try:
        stripe_client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": pm.id,
                "payment_method_types": ["card"],
                "confirm": True,
            }
        )
    except stripe.CardError as exc:
        intent_error = exc
    assert intent_error is not None
    assert intent_error.error is not None
    assert intent_error.error.decline_code == "insufficient_funds"


def test_expired_card_number_rejected(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        stripe_client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2020},
            }
        )
    assert info.value.code == "invalid_expiry_year"


def test_attach_detach(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.attach(
        "pm_card_mastercard", params={"customer": customer.id}
    )
    assert pm.customer == customer.id
    assert pm.card is not None
    assert pm.card.brand == "mastercard"
    assert stripe_client.v1.payment_methods.retrieve(pm.id).customer == customer.id
    other = stripe_client.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError, match="already been attached"):
        stripe_client.v1.payment_methods.attach(pm.id, params={"customer": other.id})
    detached = stripe_client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types[:2] == ["payment_method.detached", "customer.created"]
    assert "payment_method.attached" in types
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_methods.detach(pm.id)


def test_declined_card_cannot_be_attached(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    with pytest.raises(stripe.CardError) as info:
        stripe_client.v1.payment_methods.attach(
            "pm_card_chargeDeclined", params={"customer": customer.id}
        )
    assert info.value.code == "card_declined"
    ok = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    assert ok.customer == customer.id


def test_attach_to_missing_customer(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": "cus_missing"})
    assert info.value.param == "customer"
    assert info.value.http_status == 404


def test_customer_payment_methods_list(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    first = stripe_client.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": customer.id}
    )
    second = stripe_client.v1.payment_methods.attach(
        "pm_card_amex", params={"customer": customer.id}
    )
    listed = stripe_client.v1.customers.payment_methods.list(customer.id).data
    assert [m.id for m in listed] == [second.id, first.id]


def test_setup_intent_then_off_session(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    setup = stripe_client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_authenticationRequiredOnSetup",
            "confirm": True,
            "payment_method_types": ["card"],
        }
    )
    assert setup.status == "requires_action"
    assert setup.payment_method is not None
    pm_id = str(setup.payment_method)
    # Before the setup completes, an off-session payment needs authentication.
    with pytest.raises(stripe.CardError) as info:
        _off_session(stripe_client, customer.id, pm_id)
    assert info.value.code == "authentication_required"
    return_url_less = stripe_client.v1.setup_intents.retrieve(setup.id)
    assert return_url_less.next_action is not None
    _complete(stripe_client, setup.id)
    done = stripe_client.v1.setup_intents.retrieve(setup.id)
    assert done.status == "succeeded"
    assert stripe_client.v1.payment_methods.retrieve(pm_id).customer == customer.id
    assert _off_session(stripe_client, customer.id, pm_id).status == "succeeded"


def _complete(client: stripe.StripeClient, intent_id: str) -> None:
    base = client._requestor.base_addresses["api"]  # type: ignore[attr-defined]
    httpx.post(f"{base}/_sandbox/3ds/{intent_id}/complete").raise_for_status()


def _off_session(client: stripe.StripeClient, customer: str, pm: str) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "customer": customer,
            "payment_method": pm,
            "payment_method_types": ["card"],
            "confirm": True,
            "off_session": True,
        }
    )


def test_setup_intent_simple_card(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    setup = stripe_client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method_types": ["card"]}
    )
    assert setup.status == "requires_payment_method"
    assert setup.usage == "off_session"
    confirmed = stripe_client.v1.setup_intents.confirm(
        setup.id, params={"payment_method": "pm_card_visa"}
    )
    assert confirmed.status == "succeeded"
    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types[:3] == [
        "setup_intent.succeeded",
        "payment_method.attached",
        "setup_intent.created",
    ]
    listed = stripe_client.v1.setup_intents.list(params={"customer": customer.id}).data
    assert [s.id for s in listed] == [setup.id]


def test_setup_intent_declined_card(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        stripe_client.v1.setup_intents.create(
            params={
                "payment_method": "pm_card_chargeDeclined",
                "confirm": True,
                "payment_method_types": ["card"],
            }
        )
    assert info.value.code == "card_declined"


def test_setup_intent_cancel(stripe_client: stripe.StripeClient) -> None:
    setup = stripe_client.v1.setup_intents.create(params={"payment_method_types": ["card"]})
    canceled = stripe_client.v1.setup_intents.cancel(setup.id)
    assert canceled.status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.setup_intents.cancel(setup.id)
