"""PaymentIntents with every test card outcome (reference §1–§2)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import stripe

from paydesk_sandbox.server import RunningSandbox


def _pi(client: stripe.StripeClient, **params: Any) -> stripe.PaymentIntent:
    base: dict[str, Any] = {"amount": 2000, "currency": "usd", "payment_method_types": ["card"]}
    return client.v1.payment_intents.create(params={**base, **params})  # type: ignore[arg-type]


def test_create_confirm_succeeds(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(
        stripe_client, description="order 1", receipt_email="a@example.com", metadata={"order": "1"}
    )
    assert intent.status == "requires_payment_method"
    assert intent.client_secret is not None
    assert intent.client_secret.startswith(intent.id + "_secret_")
    confirmed = stripe_client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": "pm_card_visa"}
    )
    assert confirmed.status == "succeeded"
    assert confirmed.amount_received == 2000
    charge = stripe_client.v1.charges.retrieve(str(confirmed.latest_charge))
    assert charge.status == "succeeded"
    assert charge.paid
    assert charge.captured
    assert charge.payment_intent == intent.id
    assert charge.description == "order 1"
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card is not None
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.metadata.to_dict() == {"order": "1"}


def test_payment_method_makes_it_requires_confirmation(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client, payment_method="pm_card_visa")
    assert intent.status == "requires_confirmation"
    assert str(intent.payment_method).startswith("pm_")
    assert intent.payment_method != "pm_card_visa"  # test ids become real PaymentMethods


@pytest.mark.parametrize(
    ("pm", "code", "decline_code", "message"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline", "Your card was declined."),
        ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline", "declined"),
        (
            "pm_card_visa_chargeDeclinedInsufficientFunds",
            "card_declined",
            "insufficient_funds",
            "insufficient funds",
        ),
        ("pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card", "declined"),
        ("pm_card_visa_chargeDeclinedStolenCard", "card_declined", "stolen_card", "declined"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "expired"),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc", "security code"),
        (
            "pm_card_chargeDeclinedProcessingError",
            "processing_error",
            "processing_error",
            "error occurred",
        ),
        ("pm_card_chargeCustomerFail", "card_declined", "generic_decline", "declined"),
    ],
)
def test_declines(
    stripe_client: stripe.StripeClient, pm: str, code: str, decline_code: str, message: str
) -> None:
    with pytest.raises(stripe.CardError) as info:
        _pi(stripe_client, payment_method=pm, confirm=True)
    error = info.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error is not None
    assert error.error.decline_code == decline_code
    assert message in str(error.user_message)
    intent_data = error.error.payment_intent
    assert intent_data is not None
    intent = stripe_client.v1.payment_intents.retrieve(intent_data.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.code == code
    assert intent.last_payment_error.decline_code == decline_code
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    assert charge.status == "failed"
    assert charge.failure_code == code
    assert charge.outcome is not None
    assert charge.outcome.reason == decline_code


def test_retry_after_decline_with_another_card(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        _pi(stripe_client, payment_method="pm_card_chargeDeclined", confirm=True)
    assert info.value.error is not None
    assert info.value.error.payment_intent is not None
    intent_id = info.value.error.payment_intent.id
    retried = stripe_client.v1.payment_intents.confirm(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    assert retried.status == "succeeded"
    assert retried.last_payment_error is None
    charges = stripe_client.v1.charges.list(params={"payment_intent": intent_id})
    assert [c.status for c in charges.data] == ["succeeded", "failed"]


def test_incorrect_number_on_payment_method_create(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        stripe_client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": "4242424242424241", "exp_month": 12, "exp_year": 2034},
            }
        )
    assert info.value.code == "incorrect_number"


def test_manual_capture(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(
        stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual"
    )
    assert intent.status == "requires_capture"
    assert intent.amount_capturable == 2000
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    assert charge.captured is False
    captured = stripe_client.v1.payment_intents.capture(
        intent.id, params={"amount_to_capture": 1500}
    )
    assert captured.status == "succeeded"
    assert captured.amount_received == 1500
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    assert charge.captured is True
    assert charge.amount_captured == 1500


def test_capture_requires_requires_capture(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.payment_intents.capture(intent.id)
    assert info.value.code == "payment_intent_unexpected_state"


def test_cancel(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client)
    canceled = stripe_client.v1.payment_intents.cancel(
        intent.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"
    assert canceled.canceled_at is not None
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.payment_intents.confirm(
            intent.id, params={"payment_method": "pm_card_visa"}
        )
    assert info.value.code == "payment_intent_unexpected_state"


def test_cannot_cancel_succeeded(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    with pytest.raises(stripe.InvalidRequestError, match="status of succeeded"):
        stripe_client.v1.payment_intents.cancel(intent.id)


def test_cancel_uncaptured_releases_the_charge(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(
        stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual"
    )
    stripe_client.v1.payment_intents.cancel(intent.id)
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    assert charge.refunded is True
    assert stripe_client.v1.refunds.list().data == []  # no Refund object since basil


def test_update(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client, metadata={"a": "1"})
    updated = stripe_client.v1.payment_intents.update(
        intent.id, params={"amount": 3000, "description": "new", "metadata": {"b": "2"}}
    )
    assert updated.amount == 3000
    assert updated.description == "new"
    assert updated.metadata.to_dict() == {"a": "1", "b": "2"}


def test_automatic_payment_methods_need_return_url(stripe_client: stripe.StripeClient) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params={"amount": 2000, "currency": "usd", "automatic_payment_methods": {"enabled": True}}
    )
    assert intent.automatic_payment_methods is not None
    assert intent.automatic_payment_methods.enabled is True
    with pytest.raises(stripe.InvalidRequestError, match="return_url"):
        stripe_client.v1.payment_intents.confirm(
            intent.id, params={"payment_method": "pm_card_visa"}
        )
    ok = stripe_client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": "pm_card_visa", "return_url": "https://example.com/r"}
    )
    assert ok.status == "succeeded"
    no_redirects = stripe_client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    assert no_redirects.status == "succeeded"


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        (49, "usd", "amount_too_small"),
        (29, "gbp", "amount_too_small"),
        (49, "jpy", "amount_too_small"),
        (100_000_000, "usd", "amount_too_large"),
    ],
)
def test_amount_limits(
    stripe_client: stripe.StripeClient, amount: int, currency: str, code: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        _pi(stripe_client, amount=amount, currency=currency)
    assert info.value.code == code
    assert info.value.param == "amount"


def test_zero_decimal_currency(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(
        stripe_client, amount=50, currency="jpy", payment_method="pm_card_visa", confirm=True
    )
    assert intent.status == "succeeded"
    assert intent.amount_received == 50
    with pytest.raises(stripe.InvalidRequestError, match="¥50"):
        _pi(stripe_client, amount=10, currency="jpy")


def test_unknown_currency(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        _pi(stripe_client, currency="xyz")
    assert info.value.param == "currency"


def test_unknown_payment_method(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        _pi(stripe_client, payment_method="pm_nope")
    assert info.value.http_status == 404
    assert info.value.param == "payment_method"


def test_list_by_customer(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    mine = _pi(stripe_client, customer=customer.id)
    _pi(stripe_client)
    listed = stripe_client.v1.payment_intents.list(params={"customer": customer.id})
    assert [i.id for i in listed.data] == [mine.id]


# ---- 3-D Secure ----------------------------------------------------------------
@pytest.mark.parametrize(
    "pm",
    [
        "pm_card_authenticationRequired",
        "pm_card_threeDSecure2Required",
        "pm_card_authenticationRequiredOnSetup",
    ],
)
def test_3ds_without_return_url_uses_stripe_sdk(
    stripe_client: stripe.StripeClient, pm: str
) -> None:
    intent = _pi(stripe_client, payment_method=pm, confirm=True)
    assert intent.status == "requires_action"
    assert intent.next_action is not None
    assert intent.next_action.type == "use_stripe_sdk"


def test_3ds_redirect_page_complete(
    sandbox: RunningSandbox, stripe_client: stripe.StripeClient
) -> None:
    intent = _pi(
        stripe_client,
        payment_method="pm_card_threeDSecure2Required",
        confirm=True,
        return_url="https://shop.example/return?x=1",
    )
    assert intent.status == "requires_action"
    assert intent.next_action is not None
    redirect = intent.next_action.redirect_to_url
    assert redirect is not None
    assert redirect.return_url == "https://shop.example/return?x=1"
    assert redirect.url is not None
    page = httpx.get(redirect.url)
    assert page.status_code == 200
    assert "Complete" in page.text
    assert "Fail" in page.text
    # Press "Complete" as a browser would: submit that button's form, get redirected back.
    forms = re.findall(
        r'<form method="post" action="([^"]+)".*?name="(\w+)" value="(\w+)"', page.text, re.S
    )
    complete = next(
        (action, field, value) for action, field, value in forms if "complete" in action
    )
    pressed = httpx.post(f"{sandbox.url}{complete[0]}", data={complete[1]: complete[2]})
    assert pressed.status_code == 303
    location = pressed.headers["location"]
    assert location.startswith("https://shop.example/return?x=1&payment_intent=" + intent.id)
    assert "redirect_status=succeeded" in location
    done = stripe_client.v1.payment_intents.retrieve(intent.id)
    assert done.status == "succeeded"
    assert done.next_action is None


def test_3ds_fail_hook(sandbox: RunningSandbox, stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client, payment_method="pm_card_authenticationRequired", confirm=True)
    response = httpx.post(f"{sandbox.url}/_sandbox/3ds/{intent.id}/fail")
    assert response.status_code == 200
    assert response.json()["status"] == "requires_payment_method"
    failed = stripe_client.v1.payment_intents.retrieve(intent.id)
    assert failed.last_payment_error is not None
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"


def test_3ds_then_declined(sandbox: RunningSandbox, stripe_client: stripe.StripeClient) -> None:
    intent = _pi(
        stripe_client, payment_method="pm_card_threeDSecureRequiredChargeDeclined", confirm=True
    )
    assert intent.status == "requires_action"
    httpx.post(f"{sandbox.url}/_sandbox/3ds/{intent.id}/complete").raise_for_status()
    after = stripe_client.v1.payment_intents.retrieve(intent.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error is not None
    assert after.last_payment_error.code == "card_declined"


def test_off_session_authentication_required(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    pm = stripe_client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", params={"customer": customer.id}
    )
    with pytest.raises(stripe.CardError) as info:
        _pi(
            stripe_client,
            customer=customer.id,
            payment_method=pm.id,
            confirm=True,
            off_session=True,
        )
    assert info.value.code == "authentication_required"
    assert info.value.error is not None
    assert info.value.error.decline_code == "authentication_required"


def test_error_on_requires_action(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        _pi(
            stripe_client,
            payment_method="pm_card_threeDSecure2Required",
            confirm=True,
            error_on_requires_action=True,
        )
    assert info.value.code == "authentication_required"


def test_setup_future_usage_attaches(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    intent = _pi(
        stripe_client,
        customer=customer.id,
        payment_method="pm_card_visa",
        confirm=True,
        setup_future_usage="off_session",
    )
    pm = stripe_client.v1.payment_methods.retrieve(str(intent.payment_method))
    assert pm.customer == customer.id


def test_confirm_with_payment_method_data(stripe_client: stripe.StripeClient) -> None:
    intent = _pi(stripe_client)
    confirmed = stripe_client.v1.payment_intents.confirm(
        intent.id,
        params={
            "payment_method_data": {
                "type": "card",
                "card": {"number": "5555555555554444", "exp_month": 4, "exp_year": 2040},
                "billing_details": {"email": "card@example.com"},
            }
        },
    )
    assert confirmed.status == "succeeded"
    pm = stripe_client.v1.payment_methods.retrieve(str(confirmed.payment_method))
    assert pm.card is not None
    assert pm.card.brand == "mastercard"
    assert pm.billing_details.email == "card@example.com"
    with pytest.raises(stripe.CardError) as info:
        stripe_client.v1.payment_intents.create(
            params={
                "amount": 2000,
                "currency": "usd",
                "payment_method_types": ["card"],
                "confirm": True,
                "payment_method_data": {"type": "card", "card": {"token": "tok_chargeDeclined"}},
            }
        )
    assert info.value.code == "card_declined"


def test_allowed_payment_method_types(stripe_client: stripe.StripeClient) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "allowed_payment_method_types": ["card"],
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    assert intent.status == "succeeded"  # no return_url needed: not automatic
    assert intent.payment_method_types == ["card"]
    assert intent.automatic_payment_methods is None
