"""Scale-out: 2 API server processes and 3 worker processes on one PostgreSQL.

10,000 signed deliveries (8,000 events + 20 % duplicates) in shuffled order, sent
concurrently to both servers while the workers run. Every event must be stored
once, applied once, and the mirror must equal the in-order result.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.db.engine import create_engine
from paydesk.db.models import StripeEvent
from paydesk.stripe_gateway.webhook_signature import sign_payload
from tests.support.databases import migrated_throwaway_postgres
from tests.support.mirror import in_order_mirror, mirror_snapshot, processed_count
from tests.support.servers import (
    free_port,
    paydesk_process_environment,
    spawn_server,
    start_worker,
    wait_until_healthy,
    zygote,
)
from tests.support.waiting import poll
from tests.webhooks.support import SECRET
from tests.webhooks.synthetic import history

UNIQUE = 8_000
DUPLICATES = 2_000

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A migrated throwaway database on the shared PostgreSQL."""
    with migrated_throwaway_postgres() as url:
        yield url


def test_two_servers_three_workers_store_and_apply_each_event_once(
    shared_database: str, tmp_path: Path
) -> None:
    test_started = time.monotonic()
    events = history(UNIQUE)
    expected = in_order_mirror(events, timeout=120)
    rng = random.Random(2026)
    deliveries = events + rng.sample(events, DUPLICATES)
    rng.shuffle(deliveries)
    bodies = [orjson.dumps(event) for event in deliveries]

    env = paydesk_process_environment(shared_database, SECRET)
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        paydesk = stack.enter_context(zygote(env, tmp_path))
        servers = [spawn_server(paydesk, port, f"server-{n}") for n, port in enumerate(ports)]
        workers = [start_worker(paydesk, f"worker-{n}") for n in range(3)]
        for port, process in zip(ports, servers, strict=True):
            # Generous: five processes start at once on a possibly busy CI machine.
            wait_until_healthy(process, port, timeout=90)
        bases = [f"http://127.0.0.1:{port}" for port in ports]

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

        poll(lambda: processed_count(engine) == UNIQUE, timeout=150, every=0.25)
        applied_seconds = time.monotonic() - started

        for process in workers:
            process.stop()
        for client in clients:
            client.close()  # idle keep-alive connections would delay the servers' shutdown
        for process in servers:
            process.stop()

    # Stored once: exactly the unique ids, no duplicate rows.
    with Session(engine) as session:
        rows = session.execute(
            select(StripeEvent.event_id, StripeEvent.status, StripeEvent.attempts)
        ).all()
    assert len(rows) == UNIQUE
    assert {row.event_id for row in rows} == {event["id"] for event in events}
    assert {(row.status, row.attempts) for row in rows} == {("processed", 1)}
    # Applied once: the workers' own counts add up to one application per event.
    processed = [process.processed() for process in workers]
    summaries = [process.tail() for process in workers]
    assert None not in processed, summaries
    assert sum(n or 0 for n in processed) == UNIQUE, summaries
    assert all(n and n > 0 for n in processed), summaries  # all three took part
    # Order-proof: the shuffled, concurrent run ends where the in-order run ends.
    assert mirror_snapshot(engine) == expected
    print(
        f"scale-out: sent 10,000 in {sent_seconds:.1f}s, all applied after "
        f"{applied_seconds:.1f}s, whole test {time.monotonic() - test_started:.1f}s"
    )
