"""Price changes with prorations, cancellation, pause and resume through the SDK.

Times are driven by test clocks so proration amounts are exact: the subscription
starts 2026-01-01 (a 31-day period) and changes on 2026-01-16 with 16 days left.
"""

from collections.abc import Callable

import pytest
import stripe
from sandbox_shapes import assert_same_keys
from tests.sandbox.billing.helpers import advance, at, clocked_subscription, monthly_price

# 16 of 31 days left, rounded half-up to whole cents.
CREDIT_999 = -516  # 999 × 16 / 31 = 515.6
DEBIT_2999 = 1548  # 2999 × 16 / 31 = 1547.9


def _change_price(
    client: stripe.StripeClient, sub: stripe.Subscription, amount: int, behavior: str
) -> stripe.Subscription:
    new_price = monthly_price(client, amount, "Enterprise")
    return client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": new_price.id}],
            "proration_behavior": behavior,  # type: ignore[typeddict-item]
        },
    )


def _pending(client: stripe.StripeClient, customer_id: str) -> list[int]:
    items = client.v1.invoice_items.list(params={"customer": customer_id, "pending": True})
    return sorted(i.amount for i in items.data)


def test_create_prorations_wait_for_next_invoice(client: stripe.StripeClient) -> None:
    clock, customer, sub = clocked_subscription(client)
    advance(client, clock.id, at(2026, 1, 16))
    updated = _change_price(client, sub, 2999, "create_prorations")
    assert updated["items"].data[0].price.unit_amount == 2999
    assert updated.latest_invoice == sub.latest_invoice  # nothing invoiced yet
    assert _pending(client, customer.id) == [CREDIT_999, DEBIT_2999]
    advance(client, clock.id, at(2026, 2, 1, 2))
    renewal = client.v1.invoices.retrieve(
        str(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    )
    assert renewal.billing_reason == "subscription_cycle"
    assert sorted(line.amount for line in renewal.lines.data) == [CREDIT_999, DEBIT_2999, 2999]
    assert renewal.total == 2999 + CREDIT_999 + DEBIT_2999
    assert renewal.status == "paid"
    assert _pending(client, customer.id) == []


def test_always_invoice_charges_the_difference_now(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, _customer, sub = clocked_subscription(client)
    advance(client, clock.id, at(2026, 1, 16))
    updated = _change_price(client, sub, 2999, "always_invoice")
    invoice = client.v1.invoices.retrieve(str(updated.latest_invoice))
    assert invoice.id != sub.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    assert invoice.status == "paid"
    assert invoice.amount_paid == CREDIT_999 + DEBIT_2999
    assert all(
        line.parent.invoice_item_details is not None and line.parent.invoice_item_details.proration
        for line in invoice.lines.data
    )
    assert "customer.subscription.updated" in event_types()


def test_proration_none_creates_no_items(client: stripe.StripeClient) -> None:
    clock, customer, sub = clocked_subscription(client)
    advance(client, clock.id, at(2026, 1, 16))
    _change_price(client, sub, 2999, "none")
    assert _pending(client, customer.id) == []
    advance(client, clock.id, at(2026, 2, 1, 2))
    renewal = client.v1.invoices.retrieve(
        str(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    )
    assert renewal.total == 2999


def test_downgrade_credit_goes_to_customer_balance(client: stripe.StripeClient) -> None:
    clock, customer, sub = clocked_subscription(client, amount=2999)
    advance(client, clock.id, at(2026, 1, 16))
    updated = _change_price(client, sub, 999, "always_invoice")
    invoice = client.v1.invoices.retrieve(str(updated.latest_invoice))
    net = -DEBIT_2999 - CREDIT_999  # credit for 2999, debit for 999
    assert invoice.total == net < 0
    assert invoice.amount_due == 0
    assert invoice.status == "paid"
    assert client.v1.customers.retrieve(customer.id).balance == net
    advance(client, clock.id, at(2026, 2, 1, 2))
    renewal = client.v1.invoices.retrieve(
        str(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    )
    assert renewal.starting_balance == net
    # The credit (10.32) exceeds the 9.99 renewal: nothing is charged, 0.33 stays as credit.
    assert renewal.amount_due == 0
    assert renewal.status == "paid"
    assert client.v1.customers.retrieve(customer.id).balance == 999 + net == -33


def test_update_metadata_reports_previous_attributes(client: stripe.StripeClient) -> None:
    _clock, _customer, sub = clocked_subscription(client)
    client.v1.subscriptions.update(sub.id, params={"metadata": {"foo": "bar"}})
    events = client.v1.events.list(params={"type": "customer.subscription.updated"})
    assert events.data[0].data.object["metadata"].to_dict() == {"foo": "bar"}
    previous = events.data[0].data.previous_attributes
    assert previous is not None
    assert previous.to_dict() == {"metadata": {}}


def test_unknown_item_id_is_rejected(client: stripe.StripeClient) -> None:
    _clock, _customer, sub = clocked_subscription(client)
    price = monthly_price(client, 2999)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.update(
            sub.id, params={"items": [{"id": "si_missing", "price": price.id}]}
        )
    assert err.value.param == "items[0][id]"


def test_cancel_now(client: stripe.StripeClient, event_types: Callable[[], list[str]]) -> None:
    clock, _customer, sub = clocked_subscription(client)
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled"
    assert canceled.canceled_at == clock.frozen_time
    assert canceled.ended_at == clock.frozen_time
    assert "customer.subscription.deleted" in event_types()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(sub.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})


def test_cancel_at_period_end_then_undo_then_end(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, _customer, sub = clocked_subscription(client)
    period_end = sub["items"].data[0].current_period_end
    flagged = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert flagged.cancel_at_period_end is True
    assert flagged.cancel_at == period_end
    assert flagged.status == "active"
    undone = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    assert (undone.cancel_at_period_end, undone.cancel_at) == (False, None)
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    advance(client, clock.id, at(2026, 2, 1, 2))
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled"
    assert ended.ended_at == period_end
    assert "customer.subscription.deleted" in event_types()
    # No renewal invoice for a subscription that ended at its period end.
    assert ended.latest_invoice == sub.latest_invoice


def test_pause_and_resume(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, _customer, sub = clocked_subscription(client)
    paused = client.v1.subscriptions.pause(sub.id, params={"type": "subscription"})
    assert paused.status == "paused"
    assert "customer.subscription.paused" in event_types()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.resume(
            client.v1.subscriptions.create(
                params={
                    "customer": str(sub.customer),
                    "items": [{"price": sub["items"].data[0].price.id}],
                }
            ).id
        )
    advance(client, clock.id, at(2026, 2, 10))
    # Paused subscriptions do not renew.
    assert client.v1.subscriptions.retrieve(sub.id).latest_invoice == sub.latest_invoice
    resumed = client.v1.subscriptions.resume(sub.id)
    assert resumed.status == "active"
    assert resumed["items"].data[0].current_period_start == at(2026, 2, 10)
    invoice = client.v1.invoices.retrieve(str(resumed.latest_invoice))
    assert (invoice.status, invoice.amount_paid) == ("paid", 999)
    assert "customer.subscription.resumed" in event_types()


def test_failed_upgrade_with_error_if_incomplete_changes_nothing(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, customer, sub = clocked_subscription(client)
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )
    advance(client, clock.id, at(2026, 1, 16))
    before_events = len(event_types())
    price = monthly_price(client, 2999, "Enterprise")
    with pytest.raises(stripe.CardError):
        client.v1.subscriptions.update(
            sub.id,
            params={
                "items": [{"id": sub["items"].data[0].id, "price": price.id}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
            },
        )
    kept = client.v1.subscriptions.retrieve(sub.id)
    assert kept.status == "active"
    assert kept["items"].data[0].price.unit_amount == 999
    assert kept.latest_invoice == sub.latest_invoice
    assert client.v1.invoice_items.list(params={"customer": customer.id}).data == []
    billing = [
        t for t in event_types()[before_events:] if t.startswith(("invoice", "customer.sub"))
    ]
    assert billing == []


def test_failed_upgrade_with_allow_incomplete_goes_past_due(client: stripe.StripeClient) -> None:
    clock, customer, sub = clocked_subscription(client)
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )
    advance(client, clock.id, at(2026, 1, 16))
    updated = _change_price(client, sub, 2999, "always_invoice")
    assert updated.status == "past_due"
    assert updated["items"].data[0].price.unit_amount == 2999
    assert client.v1.invoices.retrieve(str(updated.latest_invoice)).status == "open"


def test_trial_then_first_charge(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": at(2026, 1, 1)})
    customer = client.v1.customers.create(
        params={
            "test_clock": clock.id,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    price = monthly_price(client, 999)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 14}
    )
    assert sub.status == "trialing"
    assert (sub.trial_start, sub.trial_end) == (at(2026, 1, 1), at(2026, 1, 15))
    assert sub["items"].data[0].current_period_end == at(2026, 1, 15)
    first = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (first.status, first.total) == ("paid", 0)
    assert "customer.subscription.trial_will_end" not in event_types()
    advance(client, clock.id, at(2026, 1, 13))
    assert "customer.subscription.trial_will_end" in event_types()
    advance(client, clock.id, at(2026, 1, 15, 2))
    active = client.v1.subscriptions.retrieve(sub.id)
    assert active.status == "active"
    assert active["items"].data[0].current_period_end == at(2026, 2, 15)
    charged = client.v1.invoices.retrieve(str(active.latest_invoice))
    assert (charged.status, charged.amount_paid) == ("paid", 999)


def test_trial_without_payment_method_pauses(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    customer = client.v1.customers.create()
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly_price(client, 1500).id}],
            "trial_period_days": 7,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        }
    )
    paused = client.v1.subscriptions.update(sub.id, params={"trial_end": "now"})
    assert paused.status == "paused"
    assert event_types().count("customer.subscription.paused") == 1


def test_send_invoice_subscription_is_active_with_open_invoice(
    client: stripe.StripeClient,
) -> None:
    customer = client.v1.customers.create(params={"email": "ap@example.com"})
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly_price(client, 999).id}],
            "collection_method": "send_invoice",
            "days_until_due": 14,
        }
    )
    assert sub.status == "active"
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (invoice.status, invoice.collection_method) == ("open", "send_invoice")
    assert invoice.due_date == invoice.status_transitions.finalized_at + 14 * 86_400


def test_preview_matches_what_the_change_then_charges(client: stripe.StripeClient) -> None:
    clock, customer, sub = clocked_subscription(client)
    advance(client, clock.id, at(2026, 1, 16))
    bigger = monthly_price(client, 2999, "Enterprise")
    change = {"items": [{"id": sub["items"].data[0].id, "price": bigger.id}]}
    preview = client.v1.invoices.create_preview(
        params={
            "subscription": sub.id,
            "subscription_details": {**change, "proration_behavior": "always_invoice"},
        }
    )
    assert preview.billing_reason == "subscription_update"
    assert preview.amount_due == CREDIT_999 + DEBIT_2999
    assert client.v1.invoice_items.list(params={"customer": customer.id}).data == []
    renewal = client.v1.invoices.create_preview(
        params={"subscription": sub.id, "subscription_details": change}
    )
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.total == 2999 + CREDIT_999 + DEBIT_2999
    assert renewal.lines.data[0].period.start == at(2026, 2, 1)
    updated = _change_price(client, sub, 2999, "always_invoice")
    charged = client.v1.invoices.retrieve(str(updated.latest_invoice))
    assert charged.amount_paid == preview.amount_due


def test_preview_without_upcoming_invoice(client: stripe.StripeClient) -> None:
    _clock, customer, sub = clocked_subscription(client)
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    with pytest.raises(stripe.InvalidRequestError) as none:
        client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert none.value.code == "invoice_upcoming_none"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.create_preview(params={"customer": customer.id})


def _failing_default_card(client: stripe.StripeClient, customer_id: str) -> None:
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer_id}
    )
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )


def _pending_upgrade(client: stripe.StripeClient, sub: stripe.Subscription) -> stripe.Subscription:
    price = monthly_price(client, 2999, "Enterprise")
    return client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": price.id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )


def test_pending_update_applies_once_paid(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, customer, sub = clocked_subscription(client)
    _failing_default_card(client, customer.id)
    advance(client, clock.id, at(2026, 1, 16))
    pending = _pending_upgrade(client, sub)
    assert pending.status == "active"
    assert pending["items"].data[0].price.unit_amount == 999
    assert pending.pending_update is not None
    assert pending.pending_update.subscription_items[0].price.unit_amount == 2999
    assert_same_keys(pending, "subscription")
    invoice = client.v1.invoices.retrieve(str(pending.latest_invoice))
    assert invoice.status == "open"
    assert invoice.next_payment_attempt is None
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.invoices.pay(invoice.id, params={"payment_method": good.id})
    applied = client.v1.subscriptions.retrieve(sub.id)
    assert applied.pending_update is None
    assert applied["items"].data[0].price.unit_amount == 2999
    assert "customer.subscription.pending_update_applied" in event_types()


def test_pending_update_expires(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, customer, sub = clocked_subscription(client)
    _failing_default_card(client, customer.id)
    advance(client, clock.id, at(2026, 1, 16))
    pending = _pending_upgrade(client, sub)
    advance(client, clock.id, at(2026, 1, 17, 1))
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.pending_update is None
    assert expired["items"].data[0].price.unit_amount == 999
    assert client.v1.invoices.retrieve(str(pending.latest_invoice)).status == "void"
    assert "customer.subscription.pending_update_expired" in event_types()


def test_pending_if_incomplete_rejects_other_changes(client: stripe.StripeClient) -> None:
    _clock, _customer, sub = clocked_subscription(client)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.update(
            sub.id,
            params={"payment_behavior": "pending_if_incomplete", "metadata": {"a": "b"}},
        )
    assert err.value.param == "metadata"
