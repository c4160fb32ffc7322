"""Invoices and invoice items through the SDK: create, finalize, pay, void, list."""

from collections.abc import Callable

import pytest
import stripe
from tests.sandbox.billing.helpers import clocked_subscription, customer_with_card


def _draft(client: stripe.StripeClient, customer_id: str, amount: int = 2000) -> stripe.Invoice:
    client.v1.invoice_items.create(
        params={
            "customer": customer_id,
            "amount": amount,
            "currency": "usd",
            "description": "Setup",
        }
    )
    return client.v1.invoices.create(
        params={"customer": customer_id, "pending_invoice_items_behavior": "include"}
    )


def test_manual_invoice_lifecycle(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = customer_with_card(client)
    draft = _draft(client, customer.id)
    assert (draft.status, draft.billing_reason, draft.total) == ("draft", "manual", 2000)
    assert draft.parent is None
    assert draft.lines.data[0].description == "Setup"
    assert (
        client.v1.invoice_items.list(params={"customer": customer.id, "pending": True}).data == []
    )
    finalized = client.v1.invoices.finalize_invoice(draft.id)
    assert finalized.status == "open"
    assert finalized.number is not None
    paid = client.v1.invoices.pay(draft.id)
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 2000, 0)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(draft.id)
    types = event_types()
    for expected in ("invoiceitem.created", "invoice.created", "invoice.finalized", "invoice.paid"):
        assert expected in types


def test_items_are_excluded_by_default(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 700, "currency": "usd"}
    )
    invoice = client.v1.invoices.create(params={"customer": customer.id})
    assert invoice.lines.data == []
    assert len(client.v1.invoice_items.list(params={"pending": True}).data) == 1


def test_pay_with_declining_card_raises_card_error(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = customer_with_card(client, "pm_card_chargeCustomerFail")
    draft = _draft(client, customer.id)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.invoices.pay(draft.id)
    assert declined.value.code == "card_declined"
    invoice = client.v1.invoices.retrieve(draft.id)
    assert (invoice.status, invoice.attempt_count, invoice.attempted) == ("open", 1, True)
    assert "invoice.payment_failed" in event_types()


def test_pay_without_payment_method(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    draft = _draft(client, customer.id)
    with pytest.raises(stripe.InvalidRequestError, match="payment method"):
        client.v1.invoices.pay(draft.id)
    paid = client.v1.invoices.pay(draft.id, params={"paid_out_of_band": True})
    assert paid.status == "paid"


def test_void_and_mark_uncollectible(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = customer_with_card(client)
    first = client.v1.invoices.finalize_invoice(_draft(client, customer.id).id)
    voided = client.v1.invoices.void_invoice(first.id)
    assert voided.status == "void"
    assert voided.status_transitions.voided_at is not None
    assert "invoice.voided" in event_types()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(first.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(first.id)
    second = client.v1.invoices.finalize_invoice(_draft(client, customer.id).id)
    assert client.v1.invoices.mark_uncollectible(second.id).status == "uncollectible"


def test_draft_delete_returns_items_to_pending(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    draft = _draft(client, customer.id)
    assert client.v1.invoices.delete(draft.id).deleted is True
    pending = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    assert [i.amount for i in pending.data] == [2000]
    item = client.v1.invoice_items.delete(pending.data[0].id)
    assert item.deleted is True
    finalized = client.v1.invoices.finalize_invoice(_draft(client, customer.id).id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.delete(finalized.id)


def test_list_filters(client: stripe.StripeClient) -> None:
    _clock, customer, sub = clocked_subscription(client)
    other = customer_with_card(client)
    manual = _draft(client, other.id)
    ids = lambda page: [i.id for i in page.data]  # noqa: E731
    assert ids(client.v1.invoices.list(params={"customer": customer.id})) == [sub.latest_invoice]
    assert ids(client.v1.invoices.list(params={"subscription": sub.id})) == [sub.latest_invoice]
    assert ids(client.v1.invoices.list(params={"status": "draft"})) == [manual.id]
    assert ids(client.v1.invoices.list(params={"status": "paid"})) == [sub.latest_invoice]
    assert ids(client.v1.invoices.list(params={"limit": 1})) == [manual.id]
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.invoices.list(params={"status": "weird"})  # type: ignore[typeddict-item]
    assert bad.value.param == "status"


def test_invoice_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.retrieve("in_missing")
    assert missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as no_customer:
        client.v1.invoices.create(params={})  # type: ignore[typeddict-item]
    assert (no_customer.value.param, no_customer.value.code) == ("customer", "parameter_missing")
    with pytest.raises(stripe.InvalidRequestError) as no_amount:
        client.v1.invoice_items.create(
            params={"customer": client.v1.customers.create().id, "currency": "usd"}
        )
    assert no_amount.value.param == "amount"


def test_invoice_update_metadata(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    draft = _draft(client, customer.id)
    updated = client.v1.invoices.update(
        draft.id, params={"metadata": {"order": "42"}, "description": "Thanks"}
    )
    assert updated.metadata.to_dict() == {"order": "42"}
    assert updated.description == "Thanks"
