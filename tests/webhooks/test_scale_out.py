"""Scale-out: 2 API server processes and 3 worker processes on one PostgreSQL.

10,000 signed deliveries (8,000 events + 20 % duplicates) in shuffled order, sent
concurrently to both servers while the workers run. Every event must be stored
once, applied once, and the mirror must equal the in-order result.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from paydesk.db.engine import create_engine
from paydesk.db.migrate import upgrade_to_head
from paydesk.db.models import Customer, Dispute, Payment, Refund, StripeEvent, Subscription
from paydesk.stripe_gateway.webhook_signature import sign_payload
from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.process import Worker
from paydesk.webhooks.store import insert_events
from tests.support.databases import throwaway_postgres
from tests.support.servers import free_port
from tests.support.waiting import poll
from tests.webhooks.support import SECRET
from tests.webhooks.synthetic import history

UNIQUE = 8_000
DUPLICATES = 2_000

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]


def mirror_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every business field of the mirror, sorted."""
    with Session(engine) as session:
        return {
            "payments": sorted(
                (
                    p.stripe_id,
                    p.status,
                    p.amount,
                    p.amount_received,
                    p.failure_code,
                    p.decline_code,
                    p.disputed,
                )
                for p in session.scalars(select(Payment))
            ),
            "subscriptions": sorted(
                (
                    s.stripe_id,
                    s.status,
                    s.price_id,
                    s.unit_amount,
                    s.canceled_at,
                    s.current_period_end,
                )
                for s in session.scalars(select(Subscription))
            ),
            "customers": sorted(
                (c.stripe_id, c.email, c.name) for c in session.scalars(select(Customer))
            ),
            "refunds": sorted(
                (r.stripe_id, r.status, r.amount) for r in session.scalars(select(Refund))
            ),
            "disputes": sorted(
                (d.stripe_id, d.status, d.evidence_due_by, d.closed_at is not None)
                for d in session.scalars(select(Dispute))
            ),
        }


def in_order_result(events: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """The mirror after applying ``events`` one by one, in order, with one worker."""
    with throwaway_postgres() as url:
        upgrade_to_head(url)
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                insert_events(connection, [event_from_dict(e).row() for e in events])
            Worker(engine, batch_size=500).drain(timeout=120)
            with Session(engine) as session:
                assert (
                    session.scalar(select(func.count()).where(StripeEvent.status != "processed"))
                    == 0
                )
            return mirror_snapshot(engine)
        finally:
            engine.dispose()


def environment(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    env.update(
        {
            "PAYDESK_DATABASE_URL": url,
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "PAYDESK_LOG_LEVEL": "WARNING",
            "PAYDESK_LOG_FORMAT": "json",
        }
    )
    return env


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "paydesk", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr


@pytest.fixture
def shared_database() -> Iterator[str]:
    with throwaway_postgres() as url:
        upgrade_to_head(url)
        yield url


def test_two_servers_three_workers_store_and_apply_each_event_once(shared_database: str) -> None:
    test_started = time.monotonic()
    events = history(UNIQUE)
    expected = in_order_result(events)
    rng = random.Random(2026)
    deliveries = events + rng.sample(events, DUPLICATES)
    rng.shuffle(deliveries)
    bodies = [orjson.dumps(event) for event in deliveries]

    env = environment(shared_database)
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        servers = [start(["serve", "--port", str(port)], env) for port in ports]
        workers = [start(["worker", "--batch-size", "100", "--idle", "0.1"], env) for _ in range(3)]
        for process in servers + workers:
            stack.callback(lambda p=process: p.poll() is None and p.kill())
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, process in zip(bases, servers, strict=True):
            # Generous: five interpreters start at once on a possibly busy CI machine.
            poll(lambda base=base, process=process: _healthy(base, process), timeout=90, every=0.1)

        clients = [stack.enter_context(httpx.Client(base_url=base, timeout=30)) for base in bases]

        def send(index: int) -> int:
            body = bodies[index]
            header = sign_payload(body.decode(), SECRET)
            response = clients[index % 2].post(
                "/api/webhooks/stripe",
                content=body,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
            )
            return response.status_code

        started = time.monotonic()
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(send, range(len(bodies))))
        sent_seconds = time.monotonic() - started
        assert statuses == [200] * len(bodies)

        engine = create_engine(shared_database)
        stack.callback(engine.dispose)

        def settled() -> bool:
            with Session(engine) as session:
                return (
                    session.scalar(select(func.count()).where(StripeEvent.status == "processed"))
                    == UNIQUE
                )

        poll(settled, timeout=150, every=0.25)
        applied_seconds = time.monotonic() - started

        summaries = [stop(process) for process in workers]
        for client in clients:
            client.close()  # idle keep-alive connections would delay the servers' shutdown
        for process in servers:
            stop(process)

    # Stored once: exactly the unique ids, no duplicate rows.
    with Session(engine) as session:
        rows = session.execute(
            select(StripeEvent.event_id, StripeEvent.status, StripeEvent.attempts)
        ).all()
    assert len(rows) == UNIQUE
    assert {row.event_id for row in rows} == {event["id"] for event in events}
    assert {(row.status, row.attempts) for row in rows} == {("processed", 1)}
    # Applied once: the workers' own counts add up to one application per event.
    processed = [int(m[1]) for s in summaries for m in re.finditer(r"processed=(\d+)", s)]
    assert len(processed) == 3, summaries
    assert sum(processed) == UNIQUE, summaries
    assert all(count > 0 for count in processed), summaries  # all three took part
    # Order-proof: the shuffled, concurrent run ends where the in-order run ends.
    assert mirror_snapshot(engine) == expected
    print(
        f"scale-out: sent 10,000 in {sent_seconds:.1f}s, all applied after "
        f"{applied_seconds:.1f}s, whole test {time.monotonic() - test_started:.1f}s"
    )


def _healthy(base: str, process: subprocess.Popen[str]) -> bool:
    if process.poll() is not None:
        pytest.fail(f"server exited with {process.returncode}: {process.communicate()[1][-2000:]}")
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
