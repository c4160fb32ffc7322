"""Process faults: the worker and the API killed with SIGKILL under load.

* Workers (`paydesk worker`, two side by side) are SIGKILLed at random points, inside
  a batch's transaction, while the events arrive over HTTP and are applied; each is
  replaced at once. In the end every event is applied exactly once and the mirror
  equals the in-order result.
* The API (`paydesk serve`) is SIGKILLed while deliveries are in flight and restarted;
  the sender retries whatever got no 2xx, like Stripe. Every retry is accepted and
  nothing is stored twice.

How "applied exactly once" is proven: see tests/reliability/support_faults.py.
"""

from __future__ import annotations

import random
import threading
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
    Delivery,
    Sender,
    applications,
    database_now,
    environment,
    in_transaction,
    orphaned_since,
    reference_mirror,
    stored_ids,
    synthetic_history,
)
from tests.support.databases import migrated_throwaway_postgres
from tests.support.mirror import mirror_snapshot, processed_count
from tests.support.servers import free_port, start_server, start_worker, zygote
from tests.support.waiting import poll

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(420)]


def test_worker_killed_at_random_points_applies_every_event_exactly_once(
    scale: Scale, figures: dict[str, Any], tmp_path: Path
) -> None:
    count = scale.pick(1_000, 10_000)
    kills = scale.pick(2, 5)
    rng = random.Random(2608)
    events = synthetic_history(count)
    reference = reference_mirror(count)
    # Deliveries arrive in kills + 1 stages; each kill lands while a fresh stage is
    # being applied, so there is always work in flight to cut (a worker faster than
    # the senders would otherwise be idle, with nothing to interrupt, by a late kill).
    stage = count // (kills + 1)
    bounds = [n * stage for n in range(kills + 1)] + [count]

    with migrated_throwaway_postgres() as url, ExitStack() as stack:
        env = environment(url)
        engine = create_engine(url)
        stack.callback(engine.dispose)
        port = free_port()
        pool = stack.enter_context(ThreadPoolExecutor(16))
        paydesk = stack.enter_context(zygote(env, tmp_path))
        start_server(paydesk, port)
        # Two workers side by side; each kill hits whichever is first seen mid-batch.
        workers = [start_worker(paydesk, f"worker-{n}", lease=LEASE_SECONDS) for n in range(2)]
        sender = Sender(f"http://127.0.0.1:{port}")
        stack.callback(sender.close)
        futures: list[Any] = []

        def deliver(first: int, last: int) -> None:
            futures.extend(
                pool.submit(sender.send_until_acknowledged, events[i], random.Random(i))
                for i in range(first, last)
            )

        orphaned = 0
        for n in range(1, kills + 1):
            deliver(bounds[n - 1], bounds[n])
            # Kill at a random point of the stage: once a random share of it is applied,
            # the first instant a worker is seen inside a transaction twice in a row
            # (the apply, not the brief claim), SIGKILL at once.
            point = bounds[n - 1] + int(rng.uniform(0.05, 0.3) * stage)
            poll(
                lambda point=point: processed_count(engine) >= point,
                timeout=300,
                what=f"{point} events applied before kill {n}",
            )
            slot = (
                poll(
                    lambda: next(
                        (
                            slot + 1
                            for slot, worker in enumerate(workers)
                            if in_transaction(engine, worker.name)
                            and in_transaction(engine, worker.name)
                        ),
                        None,
                    ),
                    timeout=60,
                    every=0.002,
                    what=f"a worker inside a transaction before kill {n}",
                )
                - 1
            )
            workers[slot].kill()
            killed_at = database_now(engine)
            workers[slot] = start_worker(
                paydesk, f"worker-{len(workers) + n - 1}", lease=LEASE_SECONDS
            )
            # What the victim had claimed and not committed: rolled back, to be
            # claimed again once its lease runs out.
            time.sleep(3)
            orphaned += orphaned_since(engine, killed_at)
        deliver(bounds[kills], count)

        acknowledged = [future.result() for future in futures]
        poll(
            lambda: processed_count(engine) >= count,
            timeout=scale.pick(120, 300),
            what="every event applied after the kills",
        )
        for process in workers:
            process.stop()
        ids = stored_ids(engine)
        applied = applications(engine)
        mirror = mirror_snapshot(engine)
        expected = reference.result()

    unique = {event["id"] for event in events}
    figures.update(
        events=count,
        kills=kills,
        applications_rolled_back=orphaned,
        unacknowledged=sum(1 for d in acknowledged if d.status != 200),
        duplicates_stored=len(ids) - len(set(ids)),
        losses=len(unique - set(ids)),
        applied_twice=sum(c for (_status, attempts), c in applied.items() if attempts > 1),
        mirror_mismatches=int(mirror != expected),
    )
    assert [d.status for d in acknowledged] == [200] * count
    assert sorted(ids) == sorted(unique)  # stored once each: no loss, no copy
    # Applied exactly once: one committed attempt per event (a killed batch's attempt
    # rolled back with its mirror changes).
    assert applied == {("processed", 1): count}
    assert mirror == expected
    # The kills really cut batches: claimed events were left unapplied.
    assert orphaned > 0


def test_api_killed_mid_request_retries_are_accepted_and_stored_once(
    scale: Scale, figures: dict[str, Any], tmp_path: Path
) -> None:
    count = scale.pick(1_000, 10_000)
    kills = scale.pick(2, 5)
    rng = random.Random(2609)
    events = synthetic_history(count)
    kill_points = sorted(int(rng.uniform(0.1, 0.8) * count) for _ in range(kills))

    with migrated_throwaway_postgres() as url, ExitStack() as stack:
        env = environment(url)
        engine = create_engine(url)
        stack.callback(engine.dispose)
        port = free_port()
        paydesk = stack.enter_context(zygote(env, tmp_path))
        current = start_server(paydesk, port, "server-0")
        sender = Sender(f"http://127.0.0.1:{port}", first_delay=0.1, max_delay=1.0)
        stack.callback(sender.close)
        acked = 0
        acked_lock = threading.Lock()

        def deliver(index: int) -> Delivery:
            nonlocal acked
            delivery = sender.send_until_acknowledged(events[index], random.Random(index))
            with acked_lock:
                acked += 1
            return delivery

        pool = stack.enter_context(ThreadPoolExecutor(32))
        futures = [pool.submit(deliver, i) for i in range(count)]

        kill_times: list[float] = []
        for n, point in enumerate(kill_points, start=1):
            poll(lambda point=point: acked >= point, timeout=180, what=f"{point} acknowledged")
            time.sleep(rng.uniform(0, 0.1))
            kill_times.append(time.monotonic())
            current.kill()
            current = start_server(paydesk, port, f"server-{n}")

        acknowledged = [future.result() for future in futures]
        sender.close()  # idle keep-alive connections would delay the shutdown
        current.stop()
        ids = stored_ids(engine)

    log = sender.log
    cut = [
        sum(1 for d in log if d.status is None and d.started < at <= d.finished)
        for at in kill_times
    ]
    # A retry answered "duplicate": an earlier attempt was stored but its 200 never
    # reached the sender (the kill landed between commit and answer).
    stored_ack_lost = sum(1 for d in acknowledged if d.duplicate)
    unique = {event["id"] for event in events}
    figures.update(
        events=count,
        api_kills=kills,
        requests_cut=sum(cut),
        retries=len(log) - count,
        retries_answered_duplicate=stored_ack_lost,
        unacknowledged=sum(1 for d in acknowledged if d.status != 200),
        duplicates_stored=len(ids) - len(set(ids)),
        losses=len(unique - set(ids)),
    )
    assert [d.status for d in acknowledged] == [200] * count
    assert all(n >= 1 for n in cut), f"a kill cut no request in flight: {cut}"
    assert sorted(ids) == sorted(unique)  # every retry accepted, nothing stored twice
