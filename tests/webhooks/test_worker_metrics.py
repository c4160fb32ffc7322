"""``paydesk worker --metrics-port``: a real worker process on a real database, with
events stored in its inbox, scraped over real HTTP; its Stripe calls go to a real
sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from paydesk.db.models import StripeEvent
from paydesk.settings import load_settings
from paydesk.stripe_gateway import build_gateway
from paydesk.stripe_gateway.triggers import run_trigger
from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.store import insert_events
from paydesk_sandbox.server import running_sandbox
from tests.support.servers import free_port
from tests.support.waiting import poll
from tests.webhooks.support import TEST_KEY, event_dict, payment_intent

METRICS_TOKEN = "worker-scrape-" + "t0ken" * 8
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def store(engine: Engine, *events: dict[str, Any]) -> None:
    with engine.begin() as connection:
        insert_events(connection, [event_from_dict(event).row() for event in events])


class WorkerProcess:
    """``python -m paydesk worker --metrics-port …`` with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
        clean.update({"PAYDESK_LOG_LEVEL": "INFO", **env})
        argv = [sys.executable, "-m", "paydesk", "worker", "--idle", "0.1"]
        argv += ["--metrics-port", str(self.port), *args]
        with log.open("w") as sink:
            self.proc = subprocess.Popen(argv, env=clean, stdout=sink, stderr=subprocess.STDOUT)

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=headers, timeout=10)

    def wait_serving(self) -> None:
        def answers() -> bool:
            assert self.proc.poll() is None, self.output()
            try:
                return self.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        poll(answers, timeout=90, every=0.1, what="the worker's /healthz")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        return self.output()

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def worker_process(env: dict[str, str], tmp_path: Path, *args: str) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(env, tmp_path / f"worker-{time.monotonic_ns()}.log", *args)
    try:
        worker.wait_serving()
        yield worker
    finally:
        worker.stop()


def samples(worker: WorkerProcess, **headers: str) -> Samples:
    response = worker.get("/metrics", **headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def series(found: Samples, name: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples keyed by their label values (labels sorted by name)."""
    return {
        tuple(value for _, value in sorted(labels)): value
        for (sample, labels), value in found.items()
        if sample == name
    }


def events_by_type(found: Samples) -> dict[tuple[str, str], float]:
    # Labels sorted by name: (result, type).
    return {
        (event_type, result): value
        for (result, event_type), value in series(found, "paydesk_worker_events_total").items()
    }


def one(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.execute(select(StripeEvent.event_id, StripeEvent.status)).all()
    return {str(event_id): str(status) for event_id, status in rows}


def test_worker_exports_what_it_applied_by_type_and_result(
    migrated_url: str, engine: Engine, tmp_path: Path
) -> None:
    applied = [event_dict("payment_intent.succeeded", payment_intent()) for _ in range(3)]
    ignored = [
        event_dict("payout.paid", {"id": f"po_1Paid{n}xyz", "object": "payout"}) for n in (1, 2)
    ]
    # A charge whose payment never comes, and no Stripe key to fetch it: deferred once,
    # parked at the second attempt (--max-attempts 2, backoff ~2 s).
    orphan = event_dict(
        "charge.succeeded",
        {"id": "ch_3Orphan01", "object": "charge", "payment_intent": "pi_3Gone01"},
    )
    store(engine, *applied, *ignored, orphan)
    started = time.time()
    env = {"PAYDESK_DATABASE_URL": migrated_url}
    with worker_process(env, tmp_path, "--max-attempts", "2") as worker:
        found = poll(
            lambda: (
                (s := samples(worker))
                and events_by_type(s).get(("charge.succeeded", "parked"))
                and s
            ),
            timeout=60,
            what="the orphan charge parked",
        )
        assert events_by_type(found) == {
            ("payment_intent.succeeded", "applied"): 3,
            ("payout.paid", "ignored"): 2,
            ("charge.succeeded", "failed"): 1,
            ("charge.succeeded", "parked"): 1,
        }
        # Every event was claimed by the first batch; the retry made a second one.
        assert series(found, "paydesk_worker_batches_total") == {
            ("committed",): 2,
            ("lease_lost",): 0,
            ("rolled_back",): 0,
        }
        assert one(found, "paydesk_worker_batch_duration_seconds_count") == 2
        assert one(found, "paydesk_worker_batch_duration_seconds_sum") > 0
        for name in (
            "paydesk_worker_busy_events_total",
            "paydesk_worker_lease_lost_events_total",
            "paydesk_worker_other_api_version_events_total",
            "paydesk_worker_release_failures_total",
            "paydesk_worker_round_failures_total",
            "paydesk_worker_stripe_refetches_total",
            "paydesk_worker_unreleased_events",
        ):
            assert one(found, name) == 0, name
        last_round = one(found, "paydesk_worker_last_round_success_timestamp_seconds")
        assert started < last_round <= time.time()
        # No Stripe key, no Stripe calls; the database gauges are the API's.
        assert not series(found, "paydesk_stripe_api_requests_total")
        names = {name for name, _ in found}
        assert not [n for n in names if n.startswith(("paydesk_webhook_", "paydesk_payments"))]
        assert worker.get("/readyz").status_code == 200
        assert worker.get("/nothing").status_code == 404
        output = worker.stop()
    assert worker.proc.returncode == 0, output
    assert "processed=3 ignored=2 failed=2 parked=1" in output
    assert "worker_metrics_serving" in output
    by_id = statuses(engine)
    assert [by_id[e["id"]] for e in applied] == ["processed"] * 3
    assert by_id[orphan["id"]] == "failed"


def test_worker_counts_its_stripe_calls_and_refetches(
    migrated_url: str, engine: Engine, tmp_path: Path
) -> None:
    with running_sandbox() as sandbox:
        env = {
            "PAYDESK_DATABASE_URL": migrated_url,
            "STRIPE_SECRET_KEY": TEST_KEY,
            "PAYDESK_STRIPE_API_BASE": sandbox.url,
        }
        gateway = build_gateway(load_settings(env))
        steps = run_trigger(gateway, "payment_intent.succeeded")
        pi_id = str(steps[0].object_id)
        history = {
            str(e["type"]): e
            for e in gateway.iter_events({})
            if e["data"]["object"].get("id") == pi_id
        }
        created, succeeded = history["payment_intent.created"], history["payment_intent.succeeded"]
        assert created["created"] <= succeeded["created"]
        # A charge of a payment Stripe does not have: the re-fetch gets a 404.
        orphan = event_dict(
            "charge.succeeded",
            {"id": "ch_3Orphan02", "object": "charge", "payment_intent": "pi_3NotAtStripe02"},
        )
        store(engine, succeeded, orphan)
        with worker_process(env, tmp_path, "--max-attempts", "1") as worker:
            poll(
                lambda: len(events_by_type(samples(worker))) == 2,
                timeout=60,
                what="the first batch",
            )
            # The older event arrives after the newer one was applied: re-fetched.
            store(engine, created)
            found = poll(
                lambda: (
                    (s := samples(worker))
                    and ("payment_intent.created", "applied") in events_by_type(s)
                    and s
                ),
                timeout=60,
                what="the late payment_intent.created",
            )
            assert events_by_type(found) == {
                ("payment_intent.succeeded", "applied"): 1,
                ("payment_intent.created", "applied"): 1,
                ("charge.succeeded", "parked"): 1,
            }
            route = "/v1/payment_intents/{id}"
            # Labels sorted by name: (method, outcome, route). The orphan's handler runs
            # twice in its one attempt (it fails the optimistic pass, and the batch is
            # redone with savepoints), but the redo reuses the first pass's 404: one
            # fetch per object per batch attempt.
            assert series(found, "paydesk_stripe_api_requests_total") == {
                ("GET", "success", route): 1,
                ("GET", "client_error", route): 1,
            }
            assert (
                one(
                    found,
                    "paydesk_stripe_api_request_duration_seconds_count",
                    method="GET",
                    route=route,
                )
                == 2
            )
            assert one(found, "paydesk_worker_stripe_refetches_total") == 2
            text = worker.get("/metrics").text
            output = worker.stop()
    assert worker.proc.returncode == 0, output
    with Session(engine) as session:
        outcome = session.scalar(
            select(StripeEvent.outcome).where(StripeEvent.event_id == created["id"])
        )
    assert outcome == "refetched"
    for secret in (TEST_KEY, migrated_url):
        assert secret not in text
        assert secret not in output


def test_metrics_want_the_token_and_stay_closed_outside_development_without_one(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'paydesk.db'}"
    from paydesk.db.migrate import upgrade_to_head

    upgrade_to_head(url)
    staging = {"PAYDESK_ENV": "staging", "PAYDESK_DATABASE_URL": url, "STRIPE_SECRET_KEY": TEST_KEY}
    with worker_process({**staging, "PAYDESK_METRICS_TOKEN": METRICS_TOKEN}, tmp_path) as worker:
        assert worker.get("/metrics").status_code == 401
        wrong = worker.get("/metrics", Authorization="Bearer " + "x" * len(METRICS_TOKEN))
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        found = samples(worker, Authorization=f"Bearer {METRICS_TOKEN}")
        assert one(found, "paydesk_worker_round_failures_total") == 0
        assert worker.get("/healthz").status_code == 200
        poll(lambda: worker.get("/readyz").status_code == 200, timeout=30, what="/readyz")
        output = worker.stop()
    assert METRICS_TOKEN not in output
    with worker_process(staging, tmp_path) as worker:
        assert worker.get("/metrics").status_code == 404
        assert worker.get("/healthz").status_code == 200
        output = worker.stop()
    assert "worker_metrics_closed" in output


def test_readiness_fails_while_rounds_fail(tmp_path: Path) -> None:
    # An empty database (not migrated): every claim fails, the process stays up.
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    create_engine(url).dispose()
    with worker_process({"PAYDESK_DATABASE_URL": url}, tmp_path) as worker:
        found = poll(
            lambda: (
                (s := samples(worker)) and one(s, "paydesk_worker_round_failures_total") >= 2 and s
            ),
            timeout=30,
            what="failing rounds",
        )
        assert one(found, "paydesk_worker_last_round_success_timestamp_seconds") == 0
        assert worker.get("/readyz").status_code == 503
        assert worker.get("/healthz").status_code == 200
