"""Operations over real components: out-of-order delivery with re-fetch, replay, backfill,
and the CLI commands (worker, events, webhooks setup, trigger)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from paydesk.db.models import Payment, StripeEvent
from paydesk.stripe_gateway import pinned_api_version
from paydesk.stripe_gateway.triggers import run_trigger
from paydesk.webhooks.events import GUIDE_EVENTS, subscribed_events
from paydesk.webhooks.handlers import Deferred, Fetcher
from paydesk.webhooks.operations import backfill, parse_since, since_params
from tests.webhooks.conftest import Live, live_paydesk, poll
from tests.webhooks.support import TEST_KEY, signed


@pytest.fixture
def quiet(migrated_url: str, engine: Engine) -> Iterator[Live]:
    """A Paydesk whose endpoint only hears customer.created: payment events are 'missed'."""
    yield from live_paydesk(migrated_url, engine, ("customer.created",))


def sandbox_events(live: Live, object_id: str) -> list[dict[str, object]]:
    """Events about ``object_id``, oldest first (Stripe lists newest first)."""
    events = [
        event
        for event in live.gateway.iter_events({})
        if event["data"]["object"].get("id") == object_id
    ]
    return events[::-1]


def deliver_raw(live: Live, event: dict[str, object]) -> httpx.Response:
    secret = live.settings.stripe_webhook_secrets[0].get_secret_value()
    body, headers = signed(event, secret=secret)
    return httpx.post(f"{live.base_url}/api/webhooks/stripe", content=body, headers=headers)


def payment_status(engine: Engine, pi_id: str) -> str:
    with Session(engine) as session:
        return session.scalars(select(Payment.status).where(Payment.stripe_id == pi_id)).one()


def test_out_of_order_delivery_converges_by_refetching(quiet: Live) -> None:
    steps = run_trigger(quiet.gateway, "payment_intent.succeeded")
    pi_id = str(steps[0].object_id)
    history = [
        e for e in sandbox_events(quiet, pi_id) if str(e["type"]).startswith("payment_intent.")
    ]
    assert [e["type"] for e in history] == ["payment_intent.created", "payment_intent.succeeded"]
    # Newest first: succeeded is applied, then the older `created` arrives.
    for event in reversed(history):
        assert deliver_raw(quiet, event).status_code == 200
        quiet.apply()
    assert payment_status(quiet.engine, pi_id) == "succeeded"
    outcomes = {row.type: row.outcome for row in quiet.stored() if row.object_id == pi_id}
    assert outcomes == {
        "payment_intent.succeeded": "applied",
        "payment_intent.created": "refetched",
    }
    assert quiet.worker._fetcher is not None
    assert quiet.worker._fetcher.fetched == 1


def test_refetch_is_rate_limited() -> None:
    calls: list[str] = []
    fetcher = Fetcher(
        {"customer": lambda cid: calls.append(cid) or {"id": cid}}, rate=0.01, burst=2, max_wait=0
    )
    fetcher.fetch("customer", "cus_1")
    fetcher.fetch("customer", "cus_2")
    with pytest.raises(Deferred):
        fetcher.fetch("customer", "cus_3")
    assert calls == ["cus_1", "cus_2"]


def test_backfill_stores_missed_events_once(quiet: Live) -> None:
    steps = run_trigger(quiet.gateway, "charge.refunded")
    pi_id = str(steps[0].object_id)
    listed = list(quiet.gateway.iter_events({}))
    assert quiet.stored() == []  # nothing was delivered for these types
    since = parse_since("1h")
    first = backfill(quiet.engine, quiet.gateway.iter_events(since_params(since)))  # type: ignore[arg-type]
    assert (first.seen, first.stored) == (len(listed), len(listed))
    again = backfill(quiet.engine, quiet.gateway.iter_events(since_params(since)))  # type: ignore[arg-type]
    assert (again.seen, again.stored) == (len(listed), 0)
    assert sorted(row.event_id for row in quiet.stored()) == sorted(e["id"] for e in listed)
    assert {row.source for row in quiet.stored()} == {"backfill"}
    quiet.apply()
    with Session(quiet.engine) as session:
        payment = session.scalars(select(Payment).where(Payment.stripe_id == pi_id)).one()
        assert (payment.status, payment.amount_refunded) == ("succeeded", 100)


def paydesk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "paydesk", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=120,
        check=False,
    )


def cli_env(live: Live) -> dict[str, str]:
    return {
        "PAYDESK_DATABASE_URL": live.settings.database_url.get_secret_value(),
        "STRIPE_SECRET_KEY": TEST_KEY,
        "PAYDESK_STRIPE_API_BASE": live.sandbox.url,
        "PAYDESK_LOG_LEVEL": "WARNING",
    }


def test_cli_backfill_worker_list_show_and_replay(quiet: Live) -> None:
    env = cli_env(quiet)
    trigger = paydesk("trigger", "payment_intent.succeeded", env=env)
    assert trigger.returncode == 0, trigger.stderr
    assert "POST /v1/payment_intents" in trigger.stdout
    pi_events = [
        e for e in quiet.gateway.iter_events({}) if e["type"] == "payment_intent.succeeded"
    ]
    assert len(pi_events) == 1
    event_id = str(pi_events[0]["id"])

    filled = paydesk("events", "backfill", "--since", "1h", env=env)
    assert filled.returncode == 0, filled.stderr
    assert "stored" in filled.stdout
    assert event_id in {row.event_id for row in quiet.stored()}

    worked = paydesk("worker", "--once", env=env)
    assert worked.returncode == 0, worked.stderr
    assert {row.status for row in quiet.stored()} <= {"processed", "ignored"}

    listed = paydesk("events", "list", "--type", "payment_intent.succeeded", env=env)
    assert listed.returncode == 0, listed.stderr
    assert event_id in listed.stdout
    assert "processed" in listed.stdout

    replayed = paydesk("events", "replay", event_id, env=env)
    assert replayed.returncode == 0, replayed.stderr
    shown = paydesk("events", "show", event_id, env=env)
    record = orjson.loads(shown.stdout)
    assert (record["status"], record["attempts"]) == ("pending", 0)
    assert record["payload"]["id"] == event_id

    quiet.apply()
    assert payment_status(quiet.engine, str(pi_events[0]["data"]["object"]["id"])) == "succeeded"
    assert (
        orjson.loads(paydesk("events", "show", event_id, env=env).stdout)["status"] == "processed"
    )

    missing = paydesk("events", "show", "evt_missing", env=env)
    assert missing.returncode == 1
    assert "No stored event" in missing.stderr


def test_cli_replay_failed_requeues_parked_events(quiet: Live) -> None:
    charge = {"id": "ch_orphan", "object": "charge", "payment_intent": "pi_never"}
    from tests.webhooks.support import event_dict

    event = event_dict("charge.succeeded", charge)
    assert deliver_raw(quiet, event).status_code == 200
    quiet.worker._max_attempts = 1
    quiet.apply()  # re-fetching pi_never finds nothing: deferred, parked after one attempt
    (row,) = quiet.stored()
    assert (row.status, row.attempts) == ("failed", 1)
    assert quiet.worker.drain() == 0
    shown = orjson.loads(paydesk("events", "show", row.event_id, env=cli_env(quiet)).stdout)
    (attempt,) = shown["failed_attempts"]
    assert (attempt["attempt"], attempt["outcome"]) == (1, "parked")
    assert "pi_never" in attempt["error_message"]
    result = paydesk("events", "replay", "--failed", env=cli_env(quiet))
    assert result.returncode == 0, result.stderr
    assert "1 failed event(s) queued again" in result.stdout
    (row,) = quiet.stored()
    assert (row.status, row.attempts) == ("pending", 0)


def test_cli_webhooks_setup_registers_every_applied_event_once(quiet: Live) -> None:
    env = cli_env(quiet)
    url = "https://paydesk.example.com/api/webhooks/stripe"
    result = paydesk("webhooks", "setup", url, env=env)
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    (endpoint,) = [e for e in quiet.gateway.list_webhook_endpoints() if e["url"] == url]
    events = set(endpoint["enabled_events"])
    assert events == set(subscribed_events())
    # The guide's seven, and what the mirror and the refund/dispute metrics apply.
    assert set(GUIDE_EVENTS) <= events
    assert {
        "refund.created",
        "refund.updated",
        "invoice.paid",
        "invoice.payment_action_required",
        "customer.updated",
        "customer.deleted",
        "charge.dispute.closed",
    } <= events
    assert endpoint["api_version"] == pinned_api_version()


def test_cli_webhooks_setup_updates_an_existing_endpoints_events(quiet: Live) -> None:
    env = cli_env(quiet)
    url = "https://paydesk.example.com/api/webhooks/stripe"
    old = quiet.gateway.create_webhook_endpoint(
        {"url": url, "enabled_events": list(GUIDE_EVENTS)}, key="old-endpoint"
    )
    again = paydesk("webhooks", "setup", url, env=env)
    assert again.returncode == 0, again.stderr
    assert "already registered" in again.stdout
    assert "whsec_" not in again.stdout + again.stderr
    (endpoint,) = [e for e in quiet.gateway.list_webhook_endpoints() if e["url"] == url]
    assert endpoint["id"] == old["id"]
    assert set(endpoint["enabled_events"]) == set(subscribed_events())


def test_cli_trigger_unknown_type_is_refused(quiet: Live) -> None:
    result = paydesk("trigger", "payout.paid", env=cli_env(quiet))
    assert result.returncode == 2
    assert "no trigger for payout.paid" in result.stderr


def test_sandbox_delivery_of_an_unknown_type_is_kept_and_ignored(live_all: Live) -> None:
    run_trigger(live_all.gateway, "customer.subscription.created")
    rows = live_all.wait_for("payment_method.attached")
    live_all.wait_for("customer.subscription.created")
    live_all.wait_for("invoice.paid")
    live_all.apply()
    poll(lambda: all(r.status != "pending" for r in live_all.stored()))
    with Session(live_all.engine) as session:
        row = session.scalars(
            select(StripeEvent).where(StripeEvent.event_id == rows[0].event_id)
        ).one()
        assert row.status == "ignored"
        statuses = {r.type: r.status for r in session.scalars(select(StripeEvent))}
    assert statuses["customer.subscription.created"] == "processed"
    assert statuses["invoice.paid"] == "processed"
    assert "failed" not in statuses.values()


def test_cli_backfill_stores_price_events_with_decimal_fields(quiet: Live) -> None:
    """The SDK turns ``unit_amount_decimal`` into a Decimal: backfill stores it as sent."""
    from paydesk.billing.tiers import bootstrap_plans

    prices = bootstrap_plans(quiet.gateway)
    created = [e for e in quiet.gateway.iter_events({}) if e["type"] == "price.created"]
    assert len(created) == len(prices) == 3
    assert all(isinstance(e["data"]["object"]["unit_amount_decimal"], str) for e in created)

    filled = paydesk("events", "backfill", "--since", "1d", env=cli_env(quiet))
    assert filled.returncode == 0, filled.stderr
    stored = {row.event_id: row for row in quiet.stored()}
    for event in created:
        payload = orjson.loads(stored[event["id"]].payload)
        assert (
            payload["data"]["object"]["unit_amount_decimal"]
            == (event["data"]["object"]["unit_amount_decimal"])
        )
