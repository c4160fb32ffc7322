"""Subscriptions through the official SDK: create, payment behaviors, prorations, cancel."""

from collections.abc import Callable

import pytest
import stripe
from tests.sandbox.billing.helpers import customer_with_card, monthly_price


def _invoice(client: stripe.StripeClient, invoice_id: object) -> stripe.Invoice:
    return client.v1.invoices.retrieve(str(invoice_id))


def test_create_charges_first_invoice(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = customer_with_card(client)
    price = monthly_price(client, 999)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert sub.id.startswith("sub_")
    assert sub.status == "active"
    item = sub["items"].data[0]
    assert item.price.id == price.id
    assert item.current_period_end > item.current_period_start
    # Since 2025-03-31.basil the period lives on items only.
    assert "current_period_end" not in sub
    invoice = _invoice(client, sub.latest_invoice)
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_create"
    assert invoice.amount_paid == 999
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.lines.data[0].description == "1 × Premium (at $9.99 / month)"
    details = invoice.lines.data[0].pricing.price_details  # type: ignore[union-attr]
    assert (details.price, details.product) == (price.id, price.product)  # type: ignore[union-attr]
    types = event_types()
    for expected in (
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
        "payment_intent.succeeded",
        "charge.succeeded",
    ):
        assert expected in types
    # Paid during creation: no "updated" event racing ahead of "created".
    assert "customer.subscription.updated" not in types


def test_invoice_payments_are_expandable(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    price = monthly_price(client, 999)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.payments"],
        }
    )
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    payment = invoice.payments.data[0]
    assert payment.status == "paid"
    assert payment.amount_paid == 999
    intent = client.v1.payment_intents.retrieve(str(payment.payment.payment_intent))
    assert intent.status == "succeeded"
    assert intent.amount == 999


def test_free_tier_needs_no_payment_method(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "free@example.com"})
    price = monthly_price(client, 0, "Free")
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert sub.status == "active"
    invoice = _invoice(client, sub.latest_invoice)
    assert (invoice.status, invoice.amount_due, invoice.total) == ("paid", 0, 0)


def test_allow_incomplete_with_declining_card(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = customer_with_card(client, "pm_card_chargeCustomerFail")
    price = monthly_price(client, 999)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert sub.status == "incomplete"
    invoice = _invoice(client, sub.latest_invoice)
    assert invoice.status == "open"
    assert invoice.attempt_count == 1
    assert "invoice.payment_failed" in event_types()
    assert "payment_intent.payment_failed" in event_types()


def test_error_if_incomplete_creates_nothing(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = customer_with_card(client, "pm_card_chargeCustomerFail")
    price = monthly_price(client, 999)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "payment_behavior": "error_if_incomplete",
            }
        )
    assert declined.value.code == "card_declined"
    listed = client.v1.subscriptions.list(params={"customer": customer.id, "status": "all"})
    assert listed.data == []
    assert client.v1.invoices.list(params={"customer": customer.id}).data == []
    assert not [t for t in event_types() if t.startswith(("customer.subscription", "invoice."))]


def test_default_incomplete_confirmed_by_client(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = client.v1.customers.create(params={"email": "new@example.com"})
    price = monthly_price(client, 2999, "Enterprise")
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
            "expand": ["latest_invoice.confirmation_secret"],
        }
    )
    assert sub.status == "incomplete"
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert invoice.status == "open"
    secret = invoice.confirmation_secret
    assert secret is not None
    assert secret.type == "payment_intent"
    intent_id = secret.client_secret.split("_secret_")[0]
    intent = client.v1.payment_intents.retrieve(intent_id)
    assert intent.status == "requires_payment_method"
    assert intent.amount == 2999
    confirmed = client.v1.payment_intents.confirm(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    assert confirmed.status == "succeeded"
    assert _invoice(client, invoice.id).status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    types = event_types()
    assert types.index("payment_intent.succeeded") < types.index("invoice.paid")
    assert "customer.subscription.updated" in types


def test_default_incomplete_declined_by_client_stays_incomplete(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = client.v1.customers.create(params={"email": "new@example.com"})
    price = monthly_price(client, 999)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
            "expand": ["latest_invoice.confirmation_secret"],
        }
    )
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert invoice.confirmation_secret is not None
    intent_id = invoice.confirmation_secret.client_secret.split("_secret_")[0]
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(
            intent_id, params={"payment_method": "pm_card_chargeDeclined"}
        )
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    assert _invoice(client, invoice.id).status == "open"
    assert "invoice.payment_failed" in event_types()


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"items": [{"price": "price_x"}]}, "customer", "parameter_missing"),
        (
            {"customer": "cus_missing", "items": [{"price": "price_x"}]},
            "customer",
            "resource_missing",
        ),
        (
            {"customer": "{customer}", "items": [{"price": "price_missing"}]},
            "items[0][price]",
            "resource_missing",
        ),
        (
            {"customer": "{customer}", "items": [{"price": "{price}"}], "nope": "1"},
            "nope",
            "parameter_unknown",
        ),
    ],
)
def test_create_errors(
    client: stripe.StripeClient, params: dict[str, object], param: str, code: str
) -> None:
    customer = client.v1.customers.create()
    price = monthly_price(client, 999)
    filled = {
        k: (v.format(customer=customer.id) if isinstance(v, str) else v) for k, v in params.items()
    }
    if "items" in filled and filled["items"] == [{"price": "{price}"}]:
        filled["items"] = [{"price": price.id}]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create(params=filled)  # type: ignore[arg-type]
    assert (err.value.param, err.value.code) == (param, code)


def test_one_time_price_is_rejected(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    price = client.v1.prices.create(
        params={"product_data": {"name": "Fee"}, "unit_amount": 500, "currency": "usd"}
    )
    with pytest.raises(stripe.InvalidRequestError, match="recurring"):
        client.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": price.id}]}
        )


def test_unattached_default_payment_method_is_rejected(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    other = customer_with_card(client)
    price = monthly_price(client, 999)
    pm = other.invoice_settings.default_payment_method if other.invoice_settings else None
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "default_payment_method": str(pm),
            }
        )
    assert err.value.param == "default_payment_method"


def test_list_filters_and_hides_canceled(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    price = monthly_price(client, 999)
    first = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    second = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    client.v1.subscriptions.cancel(first.id)
    ids = lambda page: [s.id for s in page.data]  # noqa: E731
    assert ids(client.v1.subscriptions.list(params={"customer": customer.id})) == [second.id]
    assert ids(client.v1.subscriptions.list(params={"status": "canceled"})) == [first.id]
    assert ids(client.v1.subscriptions.list(params={"status": "all", "price": price.id})) == [
        second.id,
        first.id,
    ]
    items = client.v1.subscription_items.list(params={"subscription": second.id})
    assert [i.price.id for i in items.data] == [price.id]


def test_subscription_item_endpoints(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    base = monthly_price(client, 999)
    addon = monthly_price(client, 500, "Seats")
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": base.id}]}
    )
    added = client.v1.subscription_items.create(
        params={
            "subscription": sub.id,
            "price": addon.id,
            "quantity": 2,
            "proration_behavior": "none",
        }
    )
    assert (added.price.id, added.quantity, added.subscription) == (addon.id, 2, sub.id)
    bumped = client.v1.subscription_items.update(
        added.id, params={"quantity": 3, "proration_behavior": "none"}
    )
    assert bumped.quantity == 3
    removed = client.v1.subscription_items.delete(added.id, params={"proration_behavior": "none"})
    assert removed.deleted is True
    items = client.v1.subscriptions.retrieve(sub.id)["items"].data
    assert [i.price.id for i in items] == [base.id]
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.subscription_items.retrieve("si_missing")
    assert missing.value.code == "resource_missing"


def test_three_d_secure_first_payment_completes_later(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = customer_with_card(client, "pm_card_threeDSecure2Required")
    price = monthly_price(client, 999)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.payments"],
        }
    )
    assert sub.status == "incomplete"
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    intent_id = str(invoice.payments.data[0].payment.payment_intent)
    assert client.v1.payment_intents.retrieve(intent_id).status == "requires_action"
    assert "invoice.payment_action_required" in event_types()
    assert "invoice.payment_failed" not in event_types()
    # What the test page's "Complete" button does.
    client.raw_request("post", f"/_sandbox/3ds/{intent_id}/complete")
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
