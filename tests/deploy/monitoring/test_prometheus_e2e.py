"""End to end: a real Prometheus scrapes a running Paydesk with the shipped rules, and a
burst of declined payments through the sandbox fires the payment-failure alert; it
scrapes a running webhook worker too, and the worker rules and panels see it.

The rules are the shipped ones, except every ``for:`` is shortened to 1 s (a test
copy); windows and thresholds are unchanged.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from pydantic import SecretStr

from paydesk.web import create_app
from paydesk.webhooks.metrics import WorkerMetrics, serving_metrics
from paydesk.webhooks.process import build_worker
from tests.deploy.monitoring.tools import ALERTS, require_tool
from tests.support.admins import admin_token
from tests.support.servers import free_port, serve_in_thread
from tests.support.stack import Stack

TOKEN = "e2e-metrics-token-0123456789abcdef"
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def fast_rules(target: Path) -> Path:
    """A copy of the shipped rules with every ``for:`` at 1 s."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    target.write_text(yaml.safe_dump(rules, sort_keys=False))
    return target


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start Prometheus scraping Paydesk base URLs (API, workers); yields a starter
    returning its URL."""
    binary = require_tool("prometheus")
    processes: list[subprocess.Popen[bytes]] = []

    def start(*paydesk_urls: str) -> str:
        port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(fast_rules(tmp_path / "alerts.yml"))],
            "scrape_configs": [
                {
                    "job_name": "paydesk",
                    "scrape_timeout": "1s",
                    "authorization": {"credentials": TOKEN},
                    "static_configs": [
                        {"targets": [url.removeprefix("http://") for url in paydesk_urls]}
                    ],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = (tmp_path / "prometheus.log").open("wb")
        processes.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(ready, timeout=30, what="Prometheus to be ready")
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def alerts(prometheus: str) -> list[dict[str, Any]]:
    """Prometheus' current alerts."""
    body = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()
    found: list[dict[str, Any]] = body["data"]["alerts"]
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_declined_payments_fire_the_failure_alert(
    stack: Stack, prometheus_for: Callable[..., str]
) -> None:
    settings = stack.settings.model_copy(
        update={"metrics_token": SecretStr(TOKEN), "metrics_cache_seconds": 1}
    )
    admin = admin_token(stack.sessions, settings)
    with (
        serve_in_thread(create_app(settings, engine=stack.engine)) as base,
        httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {admin}"}
        ) as api,
    ):
        prometheus = prometheus_for(base)

        customer = api.post("/api/admin/customers", json={"user_id": "e2e"}).json()["id"]

        def pay(pm: str, n: int) -> httpx.Response:
            return api.post(
                "/api/admin/payments",
                json={
                    "customer": customer,
                    "amount": 1500,
                    "currency": "usd",
                    "payment_method": pm,
                },
                headers={"Idempotency-Key": f"e2e-{pm}-{n}"},
            )

        assert pay("pm_card_visa", 0).status_code == 200
        # Prometheus scrapes Paydesk (with the token) and has the payment series.
        eventually(
            lambda: query(prometheus, 'paydesk_payments_total{job="paydesk",outcome="succeeded"}'),
            timeout=30,
            what="the first scrape with a payment",
        )
        assert query(prometheus, 'up{job="paydesk"}')[0]["value"][1] == "1"
        assert not [
            a
            for a in alerts(prometheus)
            if a["labels"]["alertname"] == "PaydeskHighPaymentFailureRate"
        ]

        for n in range(12):
            declined = pay("pm_card_visa_chargeDeclined", n)
            assert declined.status_code == 402, declined.text

        def firing() -> list[dict[str, Any]]:
            return [
                a
                for a in alerts(prometheus)
                if a["labels"]["alertname"] == "PaydeskHighPaymentFailureRate"
                and a["state"] == "firing"
            ]

        fired = eventually(firing, timeout=60, what="PaydeskHighPaymentFailureRate to fire")
        assert fired[0]["labels"]["currency"] == "usd"
        assert fired[0]["labels"]["severity"] == "critical"
        assert fired[0]["annotations"]["runbook"].endswith("#paydeskhighpaymentfailurerate")
        # The Stripe API metrics moved too: the declines are card errors, not API errors.
        card_errors = query(
            prometheus,
            'sum(paydesk_stripe_api_requests_total{outcome="card_error",route="/v1/payment_intents"})',
        )
        assert card_errors
        assert float(card_errors[0]["value"][1]) >= 1


def stuck_rule_expr() -> str:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    (rule,) = [r for r in rules if r.get("alert") == "PaydeskWorkerStuck"]
    return str(rule["expr"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_scraped_worker_is_seen_by_the_worker_rules_and_panels(
    stack: Stack, prometheus_for: Callable[..., str]
) -> None:
    settings = stack.settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})
    metrics = WorkerMetrics()
    worker = build_worker(
        settings,
        stack.engine,
        observers=[metrics.observe_stripe],
        batch_observer=metrics.observe_batch,
    )
    metrics.watch(worker)
    stop = threading.Event()
    loop = threading.Thread(target=worker.run, args=(stop,), kwargs={"idle_seconds": 0.1})
    loop.start()
    try:
        with (
            serve_in_thread(create_app(settings, engine=stack.engine)) as api,
            serving_metrics(
                metrics, host="127.0.0.1", port=0, token=TOKEN, open_without_token=False
            ) as server,
        ):
            instance = f"127.0.0.1:{server.port}"
            prometheus = prometheus_for(api, f"http://{instance}")
            eventually(
                lambda: len(query(prometheus, 'up{job="paydesk"} == 1')) == 2,
                timeout=30,
                what="a scrape of both the API and the worker",
            )
            since_last_round = eventually(
                lambda: query(
                    prometheus, "time() - (paydesk_worker_last_round_success_timestamp_seconds > 0)"
                ),
                timeout=30,
                what="a scrape of the worker after its first round",
            )
            assert [r["metric"]["instance"] for r in since_last_round] == [instance]
            assert float(since_last_round[0]["value"][1]) < 30
            # The shipped rule, on real scrape labels: quiet at its threshold; with the
            # threshold at -1 s (every working worker counts), its join on `up` keeps the
            # worker, and only the worker.
            stuck = stuck_rule_expr()
            assert "> 600" in stuck
            assert query(prometheus, stuck) == []
            assert [
                r["metric"]["instance"] for r in query(prometheus, stuck.replace("> 600", "> -1"))
            ] == [instance]
            # The workers' Stripe panels pick the workers' series out of the API pods'
            # (same names) with `and on (job, instance) <a worker gauge>`: on real scrape
            # labels, that match leaves exactly the API pod out.
            api_only = query(
                prometheus,
                "count(paydesk_build_info unless on (job, instance)"
                " paydesk_worker_last_round_success_timestamp_seconds)",
            )
            assert api_only
            assert api_only[0]["value"][1] == "1"
            assert not [
                a
                for a in alerts(prometheus)
                if a["labels"]["alertname"].startswith("PaydeskWorker")
            ]
    finally:
        stop.set()
        loop.join(timeout=30)
