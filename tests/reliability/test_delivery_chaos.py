"""Delivery chaos: duplicates, shuffled order, delays and bursts.

Stripe promises neither order nor exactly-once delivery. One ``paydesk serve`` and two
``paydesk worker`` processes on PostgreSQL receive a synthetic history (payments,
subscriptions, customers, refunds, disputes, each a chain of events) the way a bad
day would deliver it:

* duplicates: a quarter of the events are delivered 2-4 times;
* shuffled: the deliveries go out in random order;
* bursts: in bursts of 20-400 deliveries from 32 concurrent senders, with pauses;
* delays: a tenth of the deliveries are held back until the workers have applied
  everything else, so old events land on objects that newer events already changed;
* late redeliveries: after everything is applied, some events arrive once more.

The mirror must equal the result of applying the events once, in order; each event
must be stored once and applied once; and the endpoint must say which deliveries
were duplicates (exactly one "new" answer per event).
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
    Delivery,
    Sender,
    applications,
    environment,
    reference_mirror,
    stored_ids,
    synthetic_history,
)
from tests.support.databases import migrated_throwaway_postgres
from tests.support.mirror import mirror_snapshot, processed_count
from tests.support.servers import free_port, start_server, start_worker, zygote
from tests.support.waiting import poll

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(420)]


def _object_of(event: dict[str, Any]) -> str:
    return str(event["data"]["object"]["id"])


def stale_arrivals(events_by_id: dict[str, dict[str, Any]], log: list[Delivery]) -> int:
    """Deliveries answered after a newer event of the same object had been answered."""
    newest: dict[str, int] = {}
    stale = 0
    for delivery in sorted(log, key=lambda d: d.finished):
        event = events_by_id[delivery.event_id]
        key = _object_of(event)
        if event["created"] < newest.get(key, event["created"]):
            stale += 1
        newest[key] = max(newest.get(key, 0), event["created"])
    return stale


def test_duplicated_shuffled_delayed_bursty_deliveries_end_in_the_in_order_mirror(
    scale: Scale, figures: dict[str, Any], tmp_path: Path
) -> None:
    count = scale.pick(1_000, 10_000)
    rng = random.Random(2612)
    events = synthetic_history(count)
    reference = reference_mirror(count)  # computed meanwhile, shared by the checks
    events_by_id = {event["id"]: event for event in events}
    copies = [e for e in rng.sample(events, count // 4) for _ in range(rng.randint(1, 3))]
    deliveries = events + copies
    rng.shuffle(deliveries)
    held = deliveries[: len(deliveries) // 10]  # delayed until the rest is applied
    prompt = deliveries[len(held) :]
    late = rng.sample(events, count // 20)  # redelivered after everything is applied
    bursts: list[list[dict[str, Any]]] = []
    while prompt:
        size = rng.randint(20, 400)
        bursts.append(prompt[:size])
        prompt = prompt[size:]

    with migrated_throwaway_postgres() as url, ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(32))
        env = environment(url)
        engine = create_engine(url)
        stack.callback(engine.dispose)
        paydesk = stack.enter_context(zygote(env, tmp_path))
        port = free_port()
        start_server(paydesk, port)
        workers = [start_worker(paydesk, f"worker-{n}", lease=None) for n in range(2)]
        sender = Sender(f"http://127.0.0.1:{port}")
        stack.callback(sender.close)

        def jittered(event: dict[str, Any], seed: int) -> Delivery:
            jitter = random.Random(seed)
            time.sleep(jitter.uniform(0, 0.02))  # a little network delay, reorders a burst
            return sender.send_until_acknowledged(event, jitter)

        answers: list[Delivery] = []
        seed = 0
        for burst in bursts:
            futures = []
            for event in burst:
                seed += 1
                futures.append(pool.submit(jittered, event, seed))
            answers += [future.result() for future in futures]
            time.sleep(rng.uniform(0, 0.3))
        # The held-back deliveries arrive once the workers have caught up.
        delivered = {d.event_id for d in answers}
        poll(
            lambda: processed_count(engine) >= len(delivered),
            timeout=scale.pick(120, 240),
            what="the prompt deliveries applied",
        )
        answers += list(pool.map(lambda e: sender.send_until_acknowledged(e, rng), held))
        poll(
            lambda: processed_count(engine) >= count,
            timeout=scale.pick(120, 240),
            what="every event applied",
        )
        # Redeliveries of events applied long ago change nothing.
        late_answers = list(pool.map(lambda e: sender.send_until_acknowledged(e, rng), late))
        answers += late_answers
        time.sleep(1.0)  # give the workers a chance to (wrongly) apply something again
        for process in workers:
            process.stop()
        counted = [process.processed() for process in workers]
        ids = stored_ids(engine)
        applied = applications(engine)
        mirror = mirror_snapshot(engine)
        expected = reference.result()

    unique = set(events_by_id)
    new_answers = [d for d in answers if d.status == 200 and d.duplicate is False]
    figures.update(
        events=count,
        deliveries=len(answers),
        duplicates_sent=len(answers) - count,
        bursts=len(bursts),
        delayed=len(held),
        stale_arrivals=stale_arrivals(events_by_id, answers),
        late_redeliveries=len(late),
        answered_new=len(new_answers),
        applied_by_workers=sum(n or 0 for n in counted),
        duplicates_stored=len(ids) - len(set(ids)),
        losses=len(unique - set(ids)),
        applied_twice=sum(c for (_status, attempts), c in applied.items() if attempts > 1),
        mirror_mismatches=int(mirror != expected),
    )
    assert [d.status for d in answers] == [200] * len(answers)
    # Exactly one delivery per event was the one stored; the rest were told "duplicate".
    assert sorted(d.event_id for d in new_answers) == sorted(unique)
    assert all(d.duplicate for d in late_answers)
    assert sorted(ids) == sorted(unique)
    assert applied == {("processed", 1): count}
    # The workers' own counts: one application per event between them.
    assert None not in counted, [process.tail() for process in workers]
    assert sum(n or 0 for n in counted) == count, counted
    assert mirror == expected
    # The chaos really reordered objects' histories.
    assert figures["stale_arrivals"] > 0
