"""Test clocks and renewals: period rollover, finalization, failed renewals and dunning."""

import time
from collections.abc import Callable, Iterator

import pytest
import stripe
from sandbox_testkit import make_client
from tests.sandbox.billing.helpers import (
    advance,
    at,
    clocked_subscription,
    customer_with_card,
    monthly_price,
)

from paydesk_sandbox.billing.settings import END_STATE_KEY
from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import RunningSandbox, running_sandbox
from paydesk_sandbox.state import SandboxState


def _swap_card(client: stripe.StripeClient, customer_id: str, card: str) -> None:
    pm = client.v1.payment_methods.attach(card, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )


def _latest(client: stripe.StripeClient, sub_id: str) -> stripe.Invoice:
    sub = client.v1.subscriptions.retrieve(sub_id)
    return client.v1.invoices.retrieve(str(sub.latest_invoice))


def test_clock_crud_and_events(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock = client.v1.test_helpers.test_clocks.create(
        params={"frozen_time": at(2026, 1, 1), "name": "renewals"}
    )
    assert clock.id.startswith("clock_")
    assert (clock.status, clock.name, clock.frozen_time) == ("ready", "renewals", at(2026, 1, 1))
    assert client.v1.test_helpers.test_clocks.retrieve(clock.id).id == clock.id
    listed = client.v1.test_helpers.test_clocks.list()
    assert [c.id for c in listed.data] == [clock.id]
    response = client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": at(2026, 1, 2)}
    )
    assert response.status == "advancing"
    ready = client.v1.test_helpers.test_clocks.retrieve(clock.id)
    assert (ready.status, ready.frozen_time) == ("ready", at(2026, 1, 2))
    deleted = client.v1.test_helpers.test_clocks.delete(clock.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.test_helpers.test_clocks.retrieve(clock.id)
    assert missing.value.code == "resource_missing"
    assert event_types() == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
        "test_helpers.test_clock.deleted",
    ]


def test_advance_errors(client: stripe.StripeClient) -> None:
    clock, _customer, _sub = clocked_subscription(client)
    with pytest.raises(stripe.InvalidRequestError) as backwards:
        client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": at(2025, 12, 1)}
        )
    assert backwards.value.param == "frozen_time"
    with pytest.raises(stripe.InvalidRequestError) as too_far:
        client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": at(2026, 6, 1)})
    assert too_far.value.param == "frozen_time"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.test_helpers.test_clocks.create(params={})  # type: ignore[typeddict-item]
    assert missing.value.code == "parameter_missing"


def test_clock_customer_objects_follow_clock_time(client: stripe.StripeClient) -> None:
    clock, _customer, sub = clocked_subscription(client, start=at(2024, 3, 31))
    assert sub.created == sub.start_date == at(2024, 3, 31)
    item = sub["items"].data[0]
    # March 31 → April 30: the month end is clamped.
    assert (item.current_period_start, item.current_period_end) == (
        at(2024, 3, 31),
        at(2024, 4, 30),
    )
    assert sub.test_clock == clock.id


def test_renewal_rolls_period_and_charges_after_an_hour(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, _customer, sub = clocked_subscription(client)
    before = len(event_types())
    advance(client, clock.id, at(2026, 2, 1, 0) + 60)
    draft = _latest(client, sub.id)
    assert draft.id != sub.latest_invoice
    assert (draft.status, draft.billing_reason) == ("draft", "subscription_cycle")
    assert draft.automatically_finalizes_at == at(2026, 2, 1, 1)
    renewed = client.v1.subscriptions.retrieve(sub.id)
    item = renewed["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (at(2026, 2, 1), at(2026, 3, 1))
    advance(client, clock.id, at(2026, 2, 1, 2))
    paid = client.v1.invoices.retrieve(draft.id)
    assert (paid.status, paid.amount_paid) == ("paid", 999)
    assert paid.status_transitions.finalized_at == at(2026, 2, 1, 1)
    assert paid.lines.data[0].period.start == at(2026, 2, 1)
    new = event_types()[before:]
    for expected in (
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice_payment.paid",
    ):
        assert expected in new
    assert new.index("invoice.created") < new.index("invoice.finalized") < new.index("invoice.paid")


def test_two_renewals_in_one_advance(client: stripe.StripeClient) -> None:
    clock, customer, _sub = clocked_subscription(client)
    # Two monthly intervals is as far as Stripe lets a clock jump at once.
    advance(client, clock.id, at(2026, 3, 1))
    advance(client, clock.id, at(2026, 3, 1, 2))
    invoices = client.v1.invoices.list(params={"customer": customer.id, "status": "paid"})
    assert [i.billing_reason for i in invoices.data] == [
        "subscription_cycle",
        "subscription_cycle",
        "subscription_create",
    ]


def test_failed_renewal_goes_past_due_then_recovers(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, customer, sub = clocked_subscription(client)
    _swap_card(client, customer.id, "pm_card_chargeCustomerFail")
    advance(client, clock.id, at(2026, 2, 1, 2))
    invoice = _latest(client, sub.id)
    assert (invoice.status, invoice.attempt_count) == ("open", 1)
    assert invoice.next_payment_attempt == at(2026, 2, 1, 1) + 3 * 86_400
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert "invoice.payment_failed" in event_types()
    _swap_card(client, customer.id, "pm_card_visa")
    advance(client, clock.id, at(2026, 2, 4, 2))
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 2
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_retries_exhausted_cancel_by_default(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, customer, sub = clocked_subscription(client)
    _swap_card(client, customer.id, "pm_card_chargeCustomerFail")
    advance(client, clock.id, at(2026, 2, 10))
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert _latest(client, sub.id).attempt_count == 3
    advance(client, clock.id, at(2026, 2, 20))
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled"
    assert ended.cancellation_details is not None
    assert ended.cancellation_details.reason == "payment_failed"
    invoice = _latest(client, sub.id)
    assert (invoice.attempt_count, invoice.next_payment_attempt) == (4, None)
    assert event_types().count("invoice.payment_failed") == 4
    assert "customer.subscription.deleted" in event_types()


@pytest.fixture
def unpaid_client() -> Iterator[stripe.StripeClient]:
    config = SandboxConfig(extra={END_STATE_KEY: "unpaid"})
    with running_sandbox(config) as running:
        yield make_client(running.url)


def test_retries_exhausted_can_end_unpaid(unpaid_client: stripe.StripeClient) -> None:
    client = unpaid_client
    clock, customer, sub = clocked_subscription(client)
    _swap_card(client, customer.id, "pm_card_chargeCustomerFail")
    advance(client, clock.id, at(2026, 2, 20))
    assert client.v1.subscriptions.retrieve(sub.id).status == "unpaid"
    # Unpaid subscriptions keep drafting renewal invoices that are never charged.
    advance(client, clock.id, at(2026, 3, 1, 2))
    draft = _latest(client, sub.id)
    assert (draft.status, draft.auto_advance) == ("draft", False)
    assert client.v1.subscriptions.retrieve(sub.id).status == "unpaid"


def test_unpaid_first_invoice_expires(client: stripe.StripeClient) -> None:
    clock, _customer, sub = clocked_subscription(client, card="pm_card_chargeCustomerFail")
    assert sub.status == "incomplete"
    advance(client, clock.id, at(2026, 1, 2))
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.status == "incomplete_expired"
    assert client.v1.invoices.retrieve(str(sub.latest_invoice)).status == "void"


def test_deleting_clock_deletes_its_customers_and_subscriptions(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, customer, sub = clocked_subscription(client)
    client.v1.test_helpers.test_clocks.delete(clock.id)
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    # A deleted customer answers {"deleted": true}, as in Stripe.
    assert client.v1.customers.retrieve(customer.id).to_dict().get("deleted") is True
    types = event_types()
    assert types.index("customer.subscription.deleted") < types.index(
        "test_helpers.test_clock.deleted"
    )


def test_deleting_customer_cancels_subscriptions(client: stripe.StripeClient) -> None:
    _clock, customer, sub = clocked_subscription(client)
    client.v1.customers.delete(customer.id)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled"


def test_customers_without_clock_renew_on_the_sandbox_clock(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": monthly_price(client, 999).id}]}
    )
    period_end = sub["items"].data[0].current_period_end
    client.raw_request("post", "/_sandbox/clock", advance=str(32 * 86_400))
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow
    while time.monotonic() < deadline:
        renewed = client.v1.subscriptions.retrieve(sub.id)
        invoice = client.v1.invoices.retrieve(str(renewed.latest_invoice))
        if invoice.id != sub.latest_invoice and invoice.status == "paid":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("no renewal after shifting the sandbox clock")
    assert invoice.billing_reason == "subscription_cycle"
    assert renewed["items"].data[0].current_period_start == period_end


def test_upcoming_invoice_notice_three_days_ahead(client: stripe.StripeClient) -> None:
    clock, _customer, sub = clocked_subscription(client)
    advance(client, clock.id, at(2026, 1, 28))
    assert client.v1.events.list(params={"type": "invoice.upcoming"}).data == []
    advance(client, clock.id, at(2026, 1, 29, 1))
    (event,) = client.v1.events.list(params={"type": "invoice.upcoming"}).data
    upcoming = event.data.object
    assert upcoming["billing_reason"] == "subscription_cycle"
    assert upcoming["amount_due"] == 999
    assert upcoming["parent"]["subscription_details"]["subscription"] == sub.id


def test_pause_collection_voids_renewals(client: stripe.StripeClient) -> None:
    clock, _customer, sub = clocked_subscription(client)
    client.v1.subscriptions.update(sub.id, params={"pause_collection": {"behavior": "void"}})
    advance(client, clock.id, at(2026, 2, 1, 2))
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert renewed.status == "active"
    assert client.v1.invoices.retrieve(str(renewed.latest_invoice)).status == "void"
    client.v1.subscriptions.update(sub.id, params={"pause_collection": ""})
    advance(client, clock.id, at(2026, 3, 1, 2))
    latest = client.v1.invoices.retrieve(
        str(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    )
    assert (latest.status, latest.amount_paid) == ("paid", 999)


def test_cancel_at_a_timestamp_mid_period(
    client: stripe.StripeClient, event_types: Callable[[], list[str]]
) -> None:
    clock, _customer, sub = clocked_subscription(client)
    client.v1.subscriptions.update(sub.id, params={"cancel_at": at(2026, 1, 20)})
    advance(client, clock.id, at(2026, 1, 21))
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", at(2026, 1, 20))
    assert "customer.subscription.deleted" in event_types()


def test_dunning_settings_can_be_changed_at_runtime(client: stripe.StripeClient) -> None:
    shown = client.raw_request("get", "/_sandbox/billing/settings")
    assert "canceled" in shown.body
    client.raw_request(
        "post", "/_sandbox/billing/settings", retries_exhausted="unpaid", retry_days="1"
    )
    clock, customer, sub = clocked_subscription(client)
    _swap_card(client, customer.id, "pm_card_chargeCustomerFail")
    advance(client, clock.id, at(2026, 2, 1, 2))
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    advance(client, clock.id, at(2026, 2, 2, 2))
    assert client.v1.subscriptions.retrieve(sub.id).status == "unpaid"
    with pytest.raises(stripe.InvalidRequestError):
        client.raw_request("post", "/_sandbox/billing/settings", retries_exhausted="maybe")


def test_future_billing_cycle_anchor_bills_a_prorated_stub(client: stripe.StripeClient) -> None:
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": at(2026, 1, 10)})
    customer = customer_with_card(client, clock=clock.id)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly_price(client, 3100).id}],
            "billing_cycle_anchor": at(2026, 2, 1),
        }
    )
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (at(2026, 1, 10), at(2026, 2, 1))
    stub = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert stub.amount_paid == 3100 * 22 // 31  # 22 of January's 31 days
    advance(client, clock.id, at(2026, 2, 1, 2))
    renewed = client.v1.subscriptions.retrieve(sub.id)["items"].data[0]
    assert (renewed.current_period_start, renewed.current_period_end) == (
        at(2026, 2, 1),
        at(2026, 3, 1),
    )


def test_billing_state_survives_a_snapshot(
    sandbox: RunningSandbox, client: stripe.StripeClient
) -> None:
    clock, _customer, sub = clocked_subscription(client)
    restored = SandboxState()
    restored.restore(sandbox.state.snapshot())
    assert restored.store("subscription")[sub.id]["status"] == "active"
    assert restored.private_of(sub.id) == sandbox.state.private_of(sub.id)
    assert restored.store("test_helpers.test_clock")[clock.id]["frozen_time"] == at(2026, 1, 1)


def test_card_saved_on_subscription_pays_renewals(client: stripe.StripeClient) -> None:
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": at(2026, 1, 1)})
    customer = client.v1.customers.create(params={"test_clock": clock.id})
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": monthly_price(client, 999).id}],
            "payment_behavior": "default_incomplete",
            "payment_settings": {"save_default_payment_method": "on_subscription"},
            "expand": ["latest_invoice.confirmation_secret"],
        }
    )
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert invoice.confirmation_secret is not None
    intent_id = invoice.confirmation_secret.client_secret.split("_secret_")[0]
    client.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_visa"})
    active = client.v1.subscriptions.retrieve(sub.id)
    assert active.status == "active"
    assert active.default_payment_method is not None
    card = client.v1.payment_methods.retrieve(str(active.default_payment_method))
    assert card.customer == customer.id
    advance(client, clock.id, at(2026, 2, 1, 2))
    renewal = _latest(client, sub.id)
    assert (renewal.billing_reason, renewal.status) == ("subscription_cycle", "paid")
