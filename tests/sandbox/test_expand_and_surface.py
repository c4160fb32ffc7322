"""``expand[]`` as Stripe does it, and the list surface a billing integration touches
(through the official SDK over real HTTP).

Stripe's reference for what can be expanded is ``x-expandableFields`` in its OpenAPI
spec; the pinned SDK types the same properties as ``ExpandableField[...]``, so
``test_every_sdk_expandable_field_is_accepted`` checks the sandbox against the SDK.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
import stripe
from sandbox_shapes import sample

from paydesk_sandbox.expand import EXPANDABLE

Json = dict[str, Any]


def _customer_with_subscription(client: stripe.StripeClient) -> tuple[Any, Any, Any]:
    customer = client.v1.customers.create({"email": "x@example.com"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    price = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 1200,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
        }
    )
    sub = client.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}]})
    return customer, price, sub


# ---- expand ---------------------------------------------------------------------
def test_includable_fields_of_customers_and_prices(stripe_client: stripe.StripeClient) -> None:
    customer, price, sub = _customer_with_subscription(stripe_client)
    got = stripe_client.v1.customers.retrieve(
        customer.id, {"expand": ["sources", "subscriptions", "tax_ids", "tax"]}
    )
    assert got.sources is not None
    assert got.sources.data == []
    assert got.sources.url == f"/v1/customers/{customer.id}/sources"
    assert [s.id for s in got.subscriptions.data] == [sub.id]
    assert got.tax_ids.data == []
    assert got.tax.automatic_tax == "unrecognized_location"
    # Not included by default, as on Stripe (the sample customer has no sources key).
    assert "sources" not in stripe_client.v1.customers.retrieve(customer.id)
    assert "sources" not in sample("customer")

    p = stripe_client.v1.prices.retrieve(price.id, {"expand": ["currency_options", "tiers"]})
    assert p.currency_options["usd"].unit_amount == 1200
    assert p.tiers is None
    listed = stripe_client.v1.prices.list({"expand": ["data.currency_options", "data.tiers"]})
    assert listed.data[0].currency_options["usd"].unit_amount_decimal == "1200"


def test_arrays_of_ids_expand_even_when_empty(stripe_client: stripe.StripeClient) -> None:
    customer, _, sub = _customer_with_subscription(stripe_client)
    invoice_id = sub.latest_invoice
    assert isinstance(invoice_id, str)
    invoice = stripe_client.v1.invoices.retrieve(
        invoice_id, {"expand": ["discounts", "lines.data.discounts", "customer", "subscription"]}
    )
    assert invoice.discounts == []
    assert invoice.lines.data[0].discounts == []
    assert invoice.customer.id == customer.id  # type: ignore[union-attr]
    s = stripe_client.v1.subscriptions.retrieve(
        sub.id, {"expand": ["discounts", "items.data.discounts", "latest_invoice.customer"]}
    )
    assert s.discounts == []
    assert s.latest_invoice.customer.email == "x@example.com"  # type: ignore[union-attr]
    # data. prefixes on lists, nested four levels deep.
    invoices = stripe_client.v1.invoices.list(
        {
            "expand": [
                "data.discounts",
                "data.parent.subscription_details.subscription",
                "data.customer.invoice_settings.default_payment_method",
            ]
        }
    )
    first = invoices.data[0]
    assert first.parent is not None
    assert first.parent.subscription_details is not None
    assert first.parent.subscription_details.subscription.id == sub.id  # type: ignore[union-attr]
    card = first.customer.invoice_settings.default_payment_method.card  # type: ignore[union-attr]
    assert card.brand == "visa"


def test_refuses_what_stripe_refuses(stripe_client: stripe.StripeClient) -> None:
    customer, _, sub = _customer_with_subscription(stripe_client)
    for path in ("email", "balance", "livemode", "no_such_field", "invoice_settings.footer"):
        with pytest.raises(stripe.InvalidRequestError) as err:
            stripe_client.v1.customers.retrieve(customer.id, {"expand": [path]})
        assert err.value.user_message == f"This property cannot be expanded ({path})."
        assert err.value.param == "expand"
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["status"]})
    with pytest.raises(stripe.InvalidRequestError, match="more than 4 levels"):
        stripe_client.v1.subscriptions.list({"expand": ["data.customer.a.b.c"]})


_SDK_TYPES = {
    "customer": stripe.Customer,
    "price": stripe.Price,
    "product": stripe.Product,
    "subscription": stripe.Subscription,
    "invoice": stripe.Invoice,
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "payment_method": stripe.PaymentMethod,
    "refund": stripe.Refund,
    "balance_transaction": stripe.BalanceTransaction,
}


def _sdk_expandable(cls: type) -> list[str]:
    names = []
    for name, annotation in cls.__annotations__.items():
        # ExpandableField[T] is Union[str, T] at runtime.
        if re.search(r"Union\[str, ForwardRef\(", str(annotation)):
            names.append(name)
    return names


def test_expandable_names_cover_the_sdk() -> None:
    """``EXPANDABLE`` names every property the SDK types as expandable on these objects."""
    missing = {
        field
        for cls in _SDK_TYPES.values()
        for field in _sdk_expandable(cls)
        if field not in EXPANDABLE
    }
    assert missing == set()


def test_every_sdk_expandable_field_is_accepted(stripe_client: stripe.StripeClient) -> None:
    """Each top-level property of Stripe's sample objects that the SDK types as
    expandable expands (to an object, an array of objects, or null where unset) on
    every kind of object the sandbox holds."""
    customer, price, sub = _customer_with_subscription(stripe_client)
    intent = stripe_client.v1.payment_intents.create(
        {
            "amount": 1000,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    refund = stripe_client.v1.refunds.create({"payment_intent": intent.id, "amount": 100})
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    invoice = stripe_client.v1.invoices.retrieve(str(sub.latest_invoice))
    objects = {
        "customer": customer.id,
        "price": price.id,
        "product": price.product,
        "subscription": sub.id,
        "invoice": invoice.id,
        "payment_intent": intent.id,
        "charge": charge.id,
        "payment_method": intent.payment_method,
        "refund": refund.id,
        "balance_transaction": charge.balance_transaction,
    }
    checked = 0
    for kind, object_id in objects.items():
        # The SDK knows some properties newer than the API version's sample objects.
        fields = [f for f in _sdk_expandable(_SDK_TYPES[kind]) if f in sample(kind)]
        assert fields, kind
        raw = stripe_client.raw_request("get", f"/v1/{_path_of(kind)}/{object_id}", expand=fields)
        body = stripe_client.deserialize(raw, api_mode="V1").to_dict()
        for field in fields:
            value = body.get(field)
            assert value is None or isinstance(value, (dict, list)), (kind, field, value)
            checked += 1
    assert checked > 40


def _path_of(kind: str) -> str:
    return {"balance_transaction": "balance_transactions"}.get(kind, kind + "s")


# ---- the list surface -------------------------------------------------------------
EMPTY_LISTS = [
    "/v1/accounts",
    "/v1/tax_rates",
    "/v1/shipping_rates",
    "/v1/subscription_schedules",
    "/v1/checkout/sessions",
    "/v1/payouts",
    "/v1/transfers",
    "/v1/files",
    "/v1/reviews",
    "/v1/radar/early_fraud_warnings",
    "/v1/application_fees",
    "/v1/credit_notes",
    "/v1/plans",
    "/v1/tax_ids",
    "/v1/tax_codes",
    "/v1/country_specs",
    "/v1/entitlements/features",
]


@pytest.mark.parametrize("path", EMPTY_LISTS)
def test_documented_lists_answer_an_empty_list(
    stripe_client: stripe.StripeClient, path: str
) -> None:
    raw = stripe_client.raw_request("get", path, limit=3)
    page = stripe_client.deserialize(raw, api_mode="V1")
    assert page.object == "list"
    assert page.data == []
    assert page.has_more is False
    assert page.url == path


def test_sdk_list_calls_and_refusals(stripe_client: stripe.StripeClient) -> None:
    v1 = stripe_client.v1
    assert v1.accounts.list().data == []
    assert v1.tax_rates.list({"active": True}).data == []
    assert v1.payouts.list({"status": "paid"}).data == []
    assert v1.radar.early_fraud_warnings.list().data == []
    assert v1.checkout.sessions.list().data == []
    own = v1.accounts.retrieve_current()
    assert v1.accounts.retrieve(own.id).id == own.id
    with pytest.raises(stripe.InvalidRequestError) as missing:
        v1.tax_rates.retrieve("txr_nothing")
    assert missing.value.http_status == 404
    assert missing.value.user_message == "No such tax rate: 'txr_nothing'"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        v1.tax_rates.create({"display_name": "VAT", "percentage": 20.0, "inclusive": False})
    assert refused.value.http_status == 400
    assert refused.value.user_message is not None
    assert "tax rates is not supported by the sandbox" in refused.value.user_message
    assert "Unrecognized request URL" not in refused.value.user_message


def test_customer_sources_and_product_features(stripe_client: stripe.StripeClient) -> None:
    customer, price, _ = _customer_with_subscription(stripe_client)
    sources = stripe_client.v1.customers.payment_sources.list(customer.id)
    assert sources.data == []
    assert sources.url == f"/v1/customers/{customer.id}/sources"
    features = stripe_client.v1.products.features.list(str(price.product))
    assert features.data == []
    assert stripe_client.v1.customers.tax_ids.list(customer.id).data == []
    assert stripe_client.v1.customers.balance_transactions.list(customer.id).data == []
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.customers.payment_sources.list("cus_missing")
    assert err.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.products.features.list("prod_missing")
    assert err.value.http_status == 404


def _list_services(service: object, name: str, depth: int = 0) -> list[tuple[str, Any]]:
    """Every service of the pinned SDK under ``service`` that has a ``list`` method."""
    found: list[tuple[str, Any]] = []
    module = importlib.import_module(type(service).__module__)
    for attr in getattr(module, "_subservices", {}):
        sub = getattr(service, attr)
        if depth < 2:
            found.extend(_list_services(sub, f"{name}.{attr}", depth + 1))
        if callable(getattr(sub, "list", None)):
            found.append((f"{name}.{attr}", sub))
    return found


# SDK services whose list route is not a Stripe v1 list a client can call this way.
_NOT_LISTS = {"v1.three_d_secure.authentications"}


def test_no_documented_list_is_an_unrecognized_url(stripe_client: stripe.StripeClient) -> None:
    """Every list the pinned SDK can call without a parent id answers a list."""
    called = 0
    for name, service in _list_services(stripe_client.v1, "v1"):
        if name in _NOT_LISTS:
            continue
        try:
            page = service.list()
        except TypeError:
            continue  # needs a parent id (customers' sources, ...): covered elsewhere
        assert page.object == "list", name
        called += 1
    assert called > 60
