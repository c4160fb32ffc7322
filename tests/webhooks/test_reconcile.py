"""The reconciler: Stripe's /v1/events against the inbox, gaps found, counted and healed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine

from paydesk.doctor import check_event_gap
from paydesk.stripe_gateway.triggers import run_trigger
from paydesk.webhooks.metrics import WorkerMetrics
from paydesk.webhooks.reconcile import Reconciler, find_gap, since_window
from tests.webhooks.conftest import Live, live_paydesk, poll


@pytest.fixture
def quiet(migrated_url: str, engine: Engine) -> Iterator[Live]:
    """A Paydesk whose endpoint only hears customer.created: payment events are 'missed'."""
    yield from live_paydesk(migrated_url, engine, ("customer.created",))


def _stripe_ids(live: Live) -> set[str]:
    return {str(event["id"]) for event in live.gateway.iter_events(since_window())}  # type: ignore[arg-type]


def test_gap_is_found_counted_backfilled_and_applied(quiet: Live) -> None:
    run_trigger(quiet.gateway, "charge.refunded")
    listed = _stripe_ids(quiet)
    assert len(listed) >= 4
    assert not {row.event_id for row in quiet.stored()} & listed

    # Within the grace period, an event's delivery may still be on its way: not missing.
    young = find_gap(quiet.engine, quiet.gateway.iter_events(since_window()), store=False)  # type: ignore[arg-type]
    assert (young.listed, young.missing) == (len(listed), 0)

    doctor = check_event_gap(quiet.settings, quiet.gateway)
    assert doctor.status == "PASS"

    metrics = WorkerMetrics()
    reconciler = Reconciler(
        quiet.engine,
        quiet.gateway.iter_events,
        grace_seconds=0,
        observe=metrics.observe_gap,  # type: ignore[arg-type]
    )
    gap = reconciler.run_once()
    assert (gap.listed, gap.missing, gap.stored) == (len(listed), len(listed), len(listed))
    assert gap.summary == f"{len(listed)} events missing, backfilling"
    exposition = generate_latest(metrics.registry).decode()
    assert f"paydesk_worker_reconcile_missing_events {float(len(listed))}" in exposition
    assert f"paydesk_worker_reconcile_backfilled_events_total {float(len(listed))}" in exposition
    stored = {row.event_id: row for row in quiet.stored()}
    assert set(stored) == listed
    assert {row.source for row in stored.values()} == {"backfill"}

    again = reconciler.run_once()
    assert (again.missing, again.stored) == (0, 0)
    assert reconciler.backfilled == len(listed)
    quiet.apply()
    assert {row.status for row in quiet.stored()} <= {"processed", "ignored"}


def test_doctor_says_how_many_are_missing(quiet: Live) -> None:
    run_trigger(quiet.gateway, "payment_intent.succeeded")
    missing = len(_stripe_ids(quiet))
    # The doctor counts events older than the grace period; here, all of them.
    check = check_event_gap(quiet.settings, quiet.gateway, grace_seconds=0)
    assert check.status == "WARN"
    assert check.detail.startswith(f"{missing} events missing, backfilling")


def test_runs_continuously_beside_the_worker(quiet: Live) -> None:
    reconciler = Reconciler(quiet.engine, quiet.gateway.iter_events, every=0.2, grace_seconds=0)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=reconciler.run, args=(stop,), daemon=True)
    thread.start()
    try:
        run_trigger(quiet.gateway, "payment_intent.succeeded")
        listed = _stripe_ids(quiet)
        poll(lambda: {row.event_id for row in quiet.stored()} >= listed, timeout=30)
        started = time.monotonic()
        run_trigger(quiet.gateway, "charge.refunded")
        later = _stripe_ids(quiet)
        poll(lambda: {row.event_id for row in quiet.stored()} >= later, timeout=30)
        assert time.monotonic() - started < 30
    finally:
        stop.set()
        thread.join(timeout=10)
