"""Load: a bounded soak of mixed traffic against ``paydesk serve`` + ``paydesk worker``.

PostgreSQL, the sandbox as Stripe (its own process, delivering webhooks back), and
three kinds of traffic at steady rates for ``PAYDESK_SOAK_SECONDS`` (15 s in the
short run, 300 s in ``make reliability``):

- ``webhook`` — signed ``payment_intent.succeeded`` deliveries (fresh event ids);
- ``read`` — Admin API lists and business metrics;
- ``action`` — Admin API payments (a card payment method, confirmed) and refunds.

Every answer must be the expected one (no error allowed: the traffic is valid), the
worker must have applied every stored event shortly after the soak, and the
resident memory of the server and the worker, sampled from /proc every second, must
stay bounded: after the warm-up (first half), it may grow by at most
``max(MEMORY_FLOOR_MIB, 10 % of the mid-run size)`` up to the end.
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from paydesk.db.models import StripeEvent
from tests.reliability.conftest import Scale, current_scale
from tests.reliability.support_load import ProcessStack, process_stack, rss_kib
from tests.support.admins import admin_token
from tests.support.databases import throwaway_postgres
from tests.support.stack import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY
from tests.support.waiting import poll

pytestmark = [pytest.mark.postgres]

# Requests per second of each kind (steady, open loop: a slow answer does not slow the schedule).
RATES = {"webhook": 20.0, "read": 8.0, "action": 2.0}
MEMORY_FLOOR_MIB = 24.0
MEMORY_SHARE = 0.10


def soak_seconds(scale: Scale) -> float:
    raw = os.environ.get("PAYDESK_SOAK_SECONDS", "").strip()
    return float(raw) if raw else float(scale.pick(15, 300))


def _timeout() -> float:
    return soak_seconds(current_scale()) + 240


@dataclass
class Kind:
    """What one traffic kind sent and how it went."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, seconds: float, error: str | None) -> None:
        self.latencies.append(seconds)
        if error:
            self.errors.append(error)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@pytest.fixture
def soak_stack(tmp_path: Path) -> Iterator[ProcessStack]:
    with (
        throwaway_postgres() as url,
        process_stack(
            tmp_path / "logs",
            url,
            secret_key=TEST_SECRET_KEY,
            publishable_key=TEST_PUBLISHABLE_KEY,
            webhook_secret="whsec_" + "s0ak" * 8,
            paydesk_secret="soak-secret-key-" + "k" * 30,
        ) as running,
    ):
        yield running


def _traffic(
    stack: ProcessStack, token: str, customer: str
) -> dict[str, Callable[[httpx.Client, int], str | None]]:
    paid: list[str] = []
    paid_lock = threading.Lock()
    reads = [
        "/api/admin/payments?limit=25",
        "/api/admin/metrics",
        "/api/admin/subscriptions?limit=25",
        "/api/admin/refunds?limit=25",
        "/api/admin/events?limit=25",
        "/api/admin/customers?limit=25",
    ]

    def webhook(client: httpx.Client, _n: int) -> str | None:
        body, headers = stack.signed_event()
        response = client.post("/api/webhooks/stripe", content=body, headers=headers)
        return None if response.status_code == 200 else f"webhook {response.status_code}"

    def read(client: httpx.Client, n: int) -> str | None:
        path = reads[n % len(reads)]
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        return None if response.status_code == 200 else f"GET {path} {response.status_code}"

    def action(client: httpx.Client, n: int) -> str | None:
        headers = {"Authorization": f"Bearer {token}"}
        with paid_lock:
            target = paid.pop() if n % 2 and paid else None
        if target is not None:
            response = client.post(
                f"/api/admin/payments/{target}/refunds", json={"amount": 500}, headers=headers
            )
            ok = response.status_code in (200, 201)
            return None if ok else f"refund {response.status_code} {response.text[:200]}"
        response = client.post(
            "/api/admin/payments",
            json={
                "customer": customer,
                "amount": 1000 + n,
                "currency": "usd",
                "payment_method": "pm_card_visa",
            },
            headers=headers,
        )
        if response.status_code != 200 or response.json()["payment"]["status"] != "succeeded":
            return f"payment {response.status_code} {response.text[:200]}"
        with paid_lock:
            paid.append(response.json()["payment"]["id"])
        return None

    return {"webhook": webhook, "read": read, "action": action}


def _run_kind(
    stack: ProcessStack,
    send: Callable[[httpx.Client, int], str | None],
    rate: float,
    started: float,
    seconds: float,
    result: Kind,
    late: list[float],
    workers: int,
) -> None:
    """Send at ``rate`` per second from ``workers`` threads, each on its share of the ticks."""

    def loop(offset: int) -> None:
        with httpx.Client(base_url=stack.base_url, timeout=30) as client:
            n = offset
            while True:
                due = started + n / rate
                if due >= started + seconds:
                    return
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                else:
                    late.append(now - due)
                t0 = time.perf_counter()
                try:
                    error = send(client, n)
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}"
                result.record(time.perf_counter() - t0, error)
                n += workers

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)


def _median_mib(samples: list[tuple[float, int]]) -> float:
    return statistics.median(kib for _, kib in samples) / 1024


def memory_growth(series: list[tuple[float, int]]) -> tuple[float, float, float]:
    """``(mid, end, limit)`` in MiB: the medians of the samples around the middle and of
    the last tenth, and how much growth between them is allowed."""
    half = len(series) // 2
    tail = max(3, len(series) // 10)
    mid = _median_mib(series[half - tail // 2 : half + tail // 2 + 1])
    end = _median_mib(series[-tail:])
    return mid, end, max(MEMORY_FLOOR_MIB, MEMORY_SHARE * mid)


def test_the_memory_criterion_catches_a_leak(figures: dict[str, Any]) -> None:
    # The bound can fail: a steady leak of 2 MiB per sample over a 60-sample soak trips it,
    # a flat series with noise does not.
    base = 140 * 1024
    leaking = [(float(t), base + t * 2048) for t in range(60)]
    mid, end, limit = memory_growth(leaking)
    assert end - mid > limit
    flat = [(float(t), base + (t % 3) * 300) for t in range(60)]
    mid, end, limit = memory_growth(flat)
    assert end - mid <= limit
    figures["criterion_self_checks"] = 2


@pytest.mark.timeout(_timeout())
def test_soak_mixed_traffic(
    soak_stack: ProcessStack, scale: Scale, figures: dict[str, Any]
) -> None:
    stack = soak_stack
    seconds = soak_seconds(scale)
    token = admin_token(stack.sessions, stack.settings, "admin")
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        made = client.post(
            "/api/admin/customers",
            json={"user_id": "soak-customer", "email": "soak@example.com"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code < 300, made.text
    customer = made.json()["id"]
    kinds = {name: Kind() for name in RATES}
    late: list[float] = []
    samples: dict[str, list[tuple[float, int]]] = {"serve": [], "worker": []}
    stop = threading.Event()

    def sample_memory() -> None:
        while not stop.is_set():
            at = time.monotonic()
            for name, series in samples.items():
                series.append((at, rss_kib(stack.pid(name))))
            stop.wait(1.0)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    traffic = _traffic(stack, token, customer)
    started = time.monotonic() + 0.5
    senders = [
        threading.Thread(
            target=_run_kind,
            args=(stack, traffic[name], rate, started, seconds, kinds[name], late),
            # About one second of requests in flight per kind, so slow answers under a
            # busy machine delay the schedule as little as possible.
            kwargs={"workers": max(4, math.ceil(rate))},
        )
        for name, rate in RATES.items()
    ]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    stop.set()
    sampler.join(timeout=5)
    wall = time.monotonic() - started
    stack.check_alive()

    # The worker applies everything that was stored (ours and the sandbox's deliveries).
    def drained() -> bool:
        with stack.sessions() as session:
            waiting = session.scalar(
                select(func.count()).where(StripeEvent.status.in_(("pending", "failed")))
            )
        return waiting == 0

    drain_started = time.monotonic()
    poll(drained, timeout=120, what="the worker to apply every stored event", every=0.5)
    drain_seconds = time.monotonic() - drain_started
    with stack.sessions() as session:
        stored = int(session.scalar(select(func.count()).select_from(StripeEvent)) or 0)

    requests = sum(len(k.latencies) for k in kinds.values())
    errors = [e for k in kinds.values() for e in k.errors]
    for name, kind in kinds.items():
        figures[f"{name}_requests"] = len(kind.latencies)
        for q in (50, 95, 99):
            figures[f"{name}_p{q}_ms"] = round(percentile(kind.latencies, q) * 1000, 1)
    # Memory: bounded growth after the warm-up (first half of the soak).
    growth: dict[str, float] = {}
    for name, series in samples.items():
        assert len(series) >= 6, f"too few memory samples of {name}"
        mid, end, limit = memory_growth(series)
        growth[name] = end - mid
        figures[f"{name}_rss_start_mib"] = round(series[0][1] / 1024, 1)
        figures[f"{name}_rss_mid_mib"] = round(mid, 1)
        figures[f"{name}_rss_end_mib"] = round(end, 1)
        figures[f"{name}_rss_growth_2nd_half_mib"] = round(end - mid, 1)
        figures[f"{name}_rss_limit_mib"] = round(limit, 1)
    figures["soak_seconds"] = round(wall)
    figures["requests"] = requests
    figures["errors"] = len(errors)
    figures["error_rate"] = round(len(errors) / max(requests, 1), 4)
    figures["late_max_s"] = round(max(late, default=0.0), 2)
    # Sent within a second of its due time (a busy machine delays the schedule).
    on_time = requests - sum(1 for delay in late if delay >= 1.0)
    figures["on_time_share"] = round(on_time / max(requests, 1), 3)
    figures["events_stored"] = stored
    figures["drain_s"] = round(drain_seconds, 1)

    assert errors == [], f"{len(errors)} of {requests} requests failed, e.g. {errors[:5]}"
    for name, kind in kinds.items():
        expected = int(RATES[name] * seconds)
        assert len(kind.latencies) >= expected - 2, (name, len(kind.latencies), expected)
    for name, grown in growth.items():
        limit = float(figures[f"{name}_rss_limit_mib"])
        assert grown <= limit, f"{name} grew {grown:.1f} MiB over the second half (> {limit})"
    # Every webhook we sent was stored once (plus the sandbox's own deliveries).
    assert stored >= len(kinds["webhook"].latencies)
