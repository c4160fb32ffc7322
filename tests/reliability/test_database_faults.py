"""Database faults: PostgreSQL stopped (crash-like) and restarted during a webhook storm.

A private PostgreSQL cluster (never the machine's shared server) serves one
``paydesk serve`` and one ``paydesk worker``. While signed deliveries pour in, the
cluster is stopped with ``pg_ctl -m immediate`` (every backend killed, no shutdown
checkpoint; fsync on), kept down for a few seconds and started again. The sender
retries every non-2xx answer with backoff, like Stripe.

* While it is down the endpoint answers 503, never 2xx: a 2xx means "stored".
* Every delivery acknowledged before the crash is in the database after it.
* After the sender's retries every event is stored once and applied once, and the
  mirror equals the in-order result.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from paydesk.db.engine import create_engine
from tests.reliability.conftest import Scale
from tests.reliability.support_faults import (
    LEASE_SECONDS,
    Counter,
    Delivery,
    Sender,
    applications,
    environment,
    reference_mirror,
    stored_ids,
    synthetic_history,
)
from tests.support.databases import migrate, private_cluster
from tests.support.mirror import mirror_snapshot, processed_count
from tests.support.servers import free_port, start_server, start_worker, zygote
from tests.support.waiting import poll

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(420)]


def test_postgres_restarted_during_a_storm_answers_503_then_stores_and_applies_once(
    scale: Scale, figures: dict[str, Any], tmp_path: Path
) -> None:
    count = scale.pick(1_000, 10_000)
    outage_seconds = scale.pick(4.0, 10.0)
    rng = random.Random(2611)
    events = synthetic_history(count)
    reference = reference_mirror(count)  # computed meanwhile, shared by the checks
    crash_point = int(rng.uniform(0.2, 0.5) * count)  # acknowledged deliveries before it

    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(32))
        cluster = stack.enter_context(private_cluster())
        migrate(cluster.url)
        env = environment(cluster.url)
        paydesk = stack.enter_context(zygote(env, tmp_path))
        port = free_port()
        api = start_server(paydesk, port)
        worker = start_worker(paydesk, lease=LEASE_SECONDS)
        sender = Sender(f"http://127.0.0.1:{port}", first_delay=0.2, max_delay=2.0)
        stack.callback(sender.close)
        acked = Counter()

        def deliver(index: int) -> Delivery:
            delivery = sender.send_until_acknowledged(events[index], random.Random(index))
            acked.add()
            return delivery

        futures = [pool.submit(deliver, i) for i in range(count)]
        poll(lambda: acked.value >= crash_point, timeout=180, what="the storm under way")
        cluster.stop_immediately()
        down_from = time.monotonic()
        time.sleep(outage_seconds)
        down_until = time.monotonic()
        cluster.start()
        # Before the sender's retries can matter: what was acknowledged before the
        # crash is there (an acknowledged delivery is never sent again).
        acked_before = {
            d.event_id for d in list(sender.log) if d.status == 200 and d.finished <= down_until
        }
        checker = create_engine(cluster.url)
        survived = set(stored_ids(checker))
        acknowledged = [future.result() for future in futures]
        poll(
            lambda: processed_count(checker) >= count,
            timeout=scale.pick(120, 240),
            what="every event applied after the restart",
        )
        ids = stored_ids(checker)
        applied = applications(checker)
        mirror = mirror_snapshot(checker)
        checker.dispose()
        expected = reference.result()
        worker.stop()
        counted = worker.processed()
        sender.close()
        api.stop()

    log = sender.log
    # Sent after the server was down and answered before it came back: nothing could
    # have been stored, so the only honest answer is 503.
    during = [d for d in log if d.started >= down_from and d.finished <= down_until]
    unique = {event["id"] for event in events}
    figures.update(
        events=count,
        outage_seconds=int(outage_seconds),
        acknowledged_before_crash=len(acked_before),
        lost_after_crash=len(acked_before - survived),
        answered_503=sum(1 for d in log if d.status == 503),
        answered_2xx_while_down=sum(1 for d in during if d.status is not None and d.status < 300),
        no_answer_while_down=sum(1 for d in during if d.status is None),
        retries=len(log) - count,
        applied_by_worker=counted or 0,
        unacknowledged=sum(1 for d in acknowledged if d.status != 200),
        duplicates_stored=len(ids) - len(set(ids)),
        losses=len(unique - set(ids)),
        applied_twice=sum(c for (_status, attempts), c in applied.items() if attempts > 1),
        mirror_mismatches=int(mirror != expected),
    )
    assert during, "no delivery was attempted while the database was down"
    assert {d.status for d in during} == {503}, sorted({str(d.status) for d in during})
    assert acked_before <= survived  # no 2xx without a stored (and durable) row
    assert [d.status for d in acknowledged] == [200] * count
    assert sorted(ids) == sorted(unique)
    assert applied == {("processed", 1): count}
    assert mirror == expected
