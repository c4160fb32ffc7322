"""Error cases of the billing endpoints, as the SDK raises them."""

import pytest
import stripe
from tests.sandbox.billing.helpers import clocked_subscription, customer_with_card, monthly_price


def _open_invoice(client: stripe.StripeClient) -> stripe.Invoice:
    customer = customer_with_card(client)
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 1500, "currency": "usd"}
    )
    draft = client.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    return client.v1.invoices.finalize_invoice(draft.id)


def test_finalizing_twice_is_rejected(client: stripe.StripeClient) -> None:
    invoice = _open_invoice(client)
    with pytest.raises(stripe.InvalidRequestError, match="already finalized"):
        client.v1.invoices.finalize_invoice(invoice.id)


def test_invoiced_items_cannot_change(client: stripe.StripeClient) -> None:
    invoice = _open_invoice(client)
    item_id = str(invoice.lines.data[0].parent.invoice_item_details.invoice_item)  # type: ignore[union-attr]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.delete(item_id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.update(item_id, params={"amount": 1})
    kept = client.v1.invoice_items.update(item_id, params={"metadata": {"note": "ok"}})
    assert kept.metadata.to_dict() == {"note": "ok"}


def test_open_invoice_fields_are_locked(client: stripe.StripeClient) -> None:
    invoice = _open_invoice(client)
    with pytest.raises(stripe.InvalidRequestError) as locked:
        client.v1.invoices.update(invoice.id, params={"collection_method": "send_invoice"})
    assert locked.value.param == "collection_method"


def test_paused_and_canceled_subscriptions_reject_actions(client: stripe.StripeClient) -> None:
    _clock, _customer, sub = clocked_subscription(client)
    client.v1.subscriptions.cancel(sub.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.pause(sub.id, params={"type": "subscription"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.resume(sub.id)


def test_subscription_requires_items_and_matching_currencies(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    with pytest.raises(stripe.InvalidRequestError) as no_items:
        client.v1.subscriptions.create(params={"customer": customer.id})  # type: ignore[typeddict-item]
    assert (no_items.value.param, no_items.value.code) == ("items", "parameter_missing")
    euro = client.v1.prices.create(
        params={
            "product_data": {"name": "EU"},
            "unit_amount": 900,
            "currency": "eur",
            "recurring": {"interval": "month"},
        }
    )
    with pytest.raises(stripe.InvalidRequestError, match="currency"):
        client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": monthly_price(client, 999).id}, {"price": euro.id}],
            }
        )


def test_bad_enum_values_name_their_parameter(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    price = monthly_price(client, 999)
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "payment_behavior": "sometimes",  # type: ignore[typeddict-item]
            }
        )
    assert bad.value.param == "payment_behavior"
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    with pytest.raises(stripe.InvalidRequestError) as bad_proration:
        client.v1.subscriptions.update(
            sub.id,
            params={"proration_behavior": "later"},  # type: ignore[typeddict-item]
        )
    assert bad_proration.value.param == "proration_behavior"


def test_missing_objects_are_404s(client: stripe.StripeClient) -> None:
    for call in (
        lambda: client.v1.subscriptions.retrieve("sub_missing"),
        lambda: client.v1.prices.retrieve("price_missing"),
        lambda: client.v1.invoice_items.retrieve("ii_missing"),
        lambda: client.v1.test_helpers.test_clocks.retrieve("clock_missing"),
        lambda: client.v1.subscriptions.cancel("sub_missing"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as missing:
            call()
        assert missing.value.code == "resource_missing"
        assert missing.value.http_status == 404
