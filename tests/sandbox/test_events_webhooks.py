"""Events (/v1/events) and signed webhook delivery with retries."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import stripe
from sandbox_testkit import WebhookReceiver, make_client

from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import RunningSandbox, running_sandbox


def _pay(client: stripe.StripeClient, pm: str = "pm_card_visa") -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": pm,
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )


def test_events_are_recorded_in_order(stripe_client: stripe.StripeClient) -> None:
    intent = _pay(stripe_client)
    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.created"]
    event = stripe_client.v1.events.list(params={"type": "payment_intent.succeeded"}).data[0]
    assert event.id.startswith("evt_")
    assert event.api_version == "2026-10-28.endive"
    assert event.data.object["id"] == intent.id
    assert event.data.object["status"] == "succeeded"
    assert event.request is not None
    assert event.request.id is not None
    assert event.request.id.startswith("req_")
    assert event.request.idempotency_key is not None  # the SDK sends one on every POST
    again = stripe_client.v1.events.retrieve(event.id)
    assert again.type == "payment_intent.succeeded"


def test_event_filters(stripe_client: stripe.StripeClient) -> None:
    _pay(stripe_client)
    stripe_client.v1.customers.create()
    charge_events = stripe_client.v1.events.list(params={"type": "charge.*"}).data
    assert [e.type for e in charge_events] == ["charge.succeeded"]
    many = stripe_client.v1.events.list(
        params={"types": ["customer.created", "payment_intent.created"]}
    ).data
    assert [e.type for e in many] == ["customer.created", "payment_intent.created"]
    newest = stripe_client.v1.events.list().data[0]
    after = stripe_client.v1.events.list(params={"created": {"gt": newest.created}}).data
    assert after == []
    upto = stripe_client.v1.events.list(params={"created": {"lte": newest.created}}).data
    assert len(upto) == 4
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.events.list(params={"type": "a", "types": ["b"]})


def test_previous_attributes_on_update(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "old@example.com"})
    stripe_client.v1.customers.update(
        customer.id, params={"email": "new@example.com", "metadata": {"foo": "bar"}}
    )
    event = stripe_client.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert event.data.object["email"] == "new@example.com"
    previous = event.data.previous_attributes
    assert previous is not None
    assert previous["email"] == "old@example.com"
    assert previous["metadata"].to_dict() == {"foo": None}


def test_data_object_is_a_snapshot(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"name": "First"})
    stripe_client.v1.customers.update(customer.id, params={"name": "Second"})
    created = stripe_client.v1.events.list(params={"type": "customer.created"}).data[0]
    assert created.data.object["name"] == "First"


def test_webhook_delivery_is_signed(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    endpoint = webhook_receiver.register(stripe_client, ["payment_intent.succeeded"])
    assert endpoint.secret is not None
    assert endpoint.secret.startswith("whsec_")
    intent = _pay(stripe_client)
    (event,) = webhook_receiver.wait_for("payment_intent.succeeded")
    assert event.data.object["id"] == intent.id
    assert webhook_receiver.bad_signatures == 0
    time.sleep(0.2)
    assert webhook_receiver.types() == ["payment_intent.succeeded"]  # only what it asked for


def test_wildcard_endpoint_gets_everything(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.register(stripe_client)
    with pytest.raises(stripe.CardError):
        _pay(stripe_client, "pm_card_chargeDeclined")
    webhook_receiver.wait_for("payment_intent.payment_failed")
    webhook_receiver.wait_for("charge.failed")
    webhook_receiver.wait_for("payment_intent.created")


def test_retries_until_success(
    sandbox: RunningSandbox, stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    endpoint = webhook_receiver.register(stripe_client, ["customer.created"])
    webhook_receiver.fail_next = 2
    customer = stripe_client.v1.customers.create()
    (event,) = webhook_receiver.wait_for("customer.created")
    assert event.data.object["id"] == customer.id
    log = httpx.get(f"{sandbox.url}/_sandbox/deliveries", params={"endpoint": endpoint.id}).json()
    attempts = [(d["attempt"], d["status"], d["succeeded"]) for d in log["data"]]
    assert attempts == [(1, 500, False), (2, 500, False), (3, 200, True)]
    stored = stripe_client.v1.events.retrieve(event.id)
    assert stored.pending_webhooks == 0


def test_keeps_retrying_past_the_schedule_until_the_endpoint_is_disabled(
    sandbox: RunningSandbox, stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    endpoint = webhook_receiver.register(stripe_client, ["customer.created"])
    webhook_receiver.fail_next = 10_000
    stripe_client.v1.customers.create()
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow
    while time.monotonic() < deadline and webhook_receiver.requests < 8:
        time.sleep(0.05)
    # first try + 3 listed retries (conftest's delays), then the last delay repeats
    assert webhook_receiver.requests >= 8
    body = httpx.get(f"{sandbox.url}/_sandbox/deliveries").json()
    assert body["owed"] == 1
    (failing,) = body["failing"]
    assert failing["endpoint"] == endpoint.id
    assert failing["attempts"] >= 8
    assert failing["last_error"] == "HTTP 500"
    event = stripe_client.v1.events.list().data[0]
    assert event.pending_webhooks == 1

    stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    time.sleep(0.5)
    stopped_at = webhook_receiver.requests
    time.sleep(0.5)
    assert webhook_receiver.requests == stopped_at  # disabling stops the retries
    assert httpx.get(f"{sandbox.url}/_sandbox/deliveries").json()["owed"] == 0


def test_gives_up_after_the_schedule_when_told_to(webhook_receiver: WebhookReceiver) -> None:
    config = SandboxConfig(webhook_retry_delays=(0.05, 0.1, 0.2), webhook_keep_retrying=False)
    with running_sandbox(config) as running:
        client = make_client(running.url)
        webhook_receiver.register(client, ["customer.created"])
        webhook_receiver.fail_next = 100
        client.v1.customers.create()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and webhook_receiver.requests < 4:
            time.sleep(0.05)
        time.sleep(0.5)
        assert webhook_receiver.requests == 4  # first try + 3 retries


def test_unreachable_endpoint_is_logged(
    sandbox: RunningSandbox, stripe_client: stripe.StripeClient
) -> None:
    stripe_client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/nothing", "enabled_events": ["*"]}
    )
    stripe_client.v1.customers.create()
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow
    rows: list[dict[str, object]] = []
    while time.monotonic() < deadline and len(rows) < 4:
        rows = httpx.get(f"{sandbox.url}/_sandbox/deliveries").json()["data"]
        time.sleep(0.05)
    assert len(rows) >= 4
    assert all(r["status"] is None and r["error"] for r in rows)


def test_owed_deliveries_survive_a_restart(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    # Named as the sandbox's snapshot is everywhere (the secrets scan knows it holds the
    # endpoint's signing secret on purpose, as Stripe does).
    snapshot = tmp_path / "sandbox-state.json"
    config = SandboxConfig(
        snapshot_path=snapshot, webhook_retry_delays=(0.05, 0.1), webhook_timeout=1.0
    )
    with running_sandbox(config) as first:
        client = make_client(first.url)
        webhook_receiver.register(client, ["customer.created"])
        webhook_receiver.fail_next = 10_000
        customer = client.v1.customers.create()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and webhook_receiver.requests < 2:
            time.sleep(0.05)
    assert not list(tmp_path.glob("*.tmp")), "the snapshot is written through a renamed temp file"
    webhook_receiver.fail_next = 0
    with running_sandbox(config) as second:
        (event,) = webhook_receiver.wait_for("customer.created", timeout=15)
        assert event.data.object["id"] == customer.id
        assert httpx.get(f"{second.url}/_sandbox/deliveries").json()["owed"] == 0


def test_disabled_endpoint_gets_nothing(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    endpoint = webhook_receiver.register(stripe_client)
    stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    stripe_client.v1.customers.create()
    stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": False})
    stripe_client.v1.customers.create(params={"name": "after"})
    (event,) = webhook_receiver.wait_for("customer.created")
    assert event.data.object["name"] == "after"
    time.sleep(0.2)
    assert len(webhook_receiver.events) == 1


def test_webhook_endpoint_crud(stripe_client: stripe.StripeClient) -> None:
    created = stripe_client.v1.webhook_endpoints.create(
        params={
            "url": "https://example.com/hook",
            "enabled_events": ["charge.succeeded"],
            "description": "mine",
            "api_version": "2026-10-28.endive",
        }
    )
    assert created.secret is not None
    assert created.status == "enabled"
    assert created.api_version == "2026-10-28.endive"
    fetched = stripe_client.v1.webhook_endpoints.retrieve(created.id)
    assert "secret" not in fetched  # only at creation
    updated = stripe_client.v1.webhook_endpoints.update(
        created.id, params={"enabled_events": ["*"], "url": "https://example.com/h2"}
    )
    assert updated.enabled_events == ["*"]
    assert updated.url == "https://example.com/h2"
    listed = stripe_client.v1.webhook_endpoints.list().data
    assert [e.id for e in listed] == [created.id]
    deleted = stripe_client.v1.webhook_endpoints.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.webhook_endpoints.retrieve(created.id)
    assert info.value.http_status == 404


def test_webhook_endpoint_requires_url_and_events(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.webhook_endpoints.create(params={"enabled_events": ["*"]})  # type: ignore[typeddict-item]
    assert info.value.param == "url"
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.webhook_endpoints.create(params={"url": "https://example.com"})  # type: ignore[typeddict-item]
    assert info.value.param == "enabled_events"


def test_unknown_enabled_event_is_rejected(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.webhook_endpoints.create(
            params={
                "url": "https://example.com/h",
                "enabled_events": ["charge.succeeded", "charge.suceeded"],  # type: ignore[list-item]
            }
        )
    assert info.value.param == "enabled_events[1]"


def test_delivery_success_filter(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.register(stripe_client, ["customer.created"])
    webhook_receiver.fail_next = 100
    failing = stripe_client.v1.customers.create()
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow
    while webhook_receiver.requests < 4:  # the first try and its 3 retries
        assert time.monotonic() < deadline
        time.sleep(0.05)
    webhook_receiver.fail_next = 0
    ok = stripe_client.v1.customers.create()
    webhook_receiver.wait_for("customer.created")
    time.sleep(0.1)
    undelivered = stripe_client.v1.events.list(params={"delivery_success": False}).data
    assert [e.data.object["id"] for e in undelivered] == [failing.id]
    delivered = stripe_client.v1.events.list(
        params={"delivery_success": True, "type": "customer.created"}
    ).data
    assert [e.data.object["id"] for e in delivered] == [ok.id]
