"""Stripe-like senders, inbox inspection and the shared reference for the fault checks.

Used by test_process_faults, test_database_faults and test_delivery_chaos. Everything
there is the real thing: ``paydesk serve`` and ``paydesk worker`` processes (forked
by tests.support.servers' zygote), signed deliveries over loopback HTTP, PostgreSQL
(the shared server, or a private cluster that a check may stop and start, from
tests.support.databases).

"Applied exactly once" is proven as in tests/webhooks/test_scale_out.py: every event
row is ``processed`` with ``attempts == 1`` (the attempt counter is written in the
same transaction as the event's mirror changes, so an application that was rolled
back by a crash leaves no attempt, and a second committed application would leave
two), and the mirror equals the result of applying the same events in order
(tests.support.mirror).
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from paydesk.db.engine import create_engine
from paydesk.db.models import StripeEvent
from paydesk.stripe_gateway.webhook_signature import sign_payload
from tests.support.mirror import Mirror, in_order_mirror
from tests.support.servers import paydesk_process_environment
from tests.webhooks.support import SECRET
from tests.webhooks.synthetic import history

PATH = "/api/webhooks/stripe"

# The checks kill workers on purpose and must not wait the production five minutes
# for each killed worker's batch to be claimed again; 10 s is still well above a
# batch's duration, even on a busy machine.
LEASE_SECONDS = 10.0


def environment(url: str) -> dict[str, str]:
    """The environment of a Paydesk process on ``url`` accepting ``SECRET``."""
    return paydesk_process_environment(url, SECRET)


def in_transaction(engine: Engine, application_name: str) -> bool:
    """Whether a session of ``application_name`` is inside a transaction right now."""
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                    "AND xact_start IS NOT NULL"
                ),
                {"name": application_name},
            ).scalar()
        )


@lru_cache(maxsize=4)
def synthetic_history(count: int) -> list[dict[str, Any]]:
    """The synthetic history every fault check uses (one per size, shared: read only)."""
    return history(count, seed=26)


_references: dict[int, Future[Mirror]] = {}
_references_lock = threading.Lock()


def reference_mirror(count: int) -> Future[Mirror]:
    """The mirror after applying ``synthetic_history(count)`` once, in order, one worker.

    Computed once per run in a background thread (the checks share it) on a throwaway
    database of the shared server, with no time limit that a busy machine could hit;
    ``.result()`` waits for it.
    """
    with _references_lock:
        if count not in _references:
            future: Future[Mirror] = Future()
            _references[count] = future

            def compute() -> None:
                try:
                    future.set_result(in_order_mirror(synthetic_history(count)))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                    future.set_exception(exc)

            threading.Thread(target=compute, daemon=True).start()
        return _references[count]


# -- inspecting the inbox --------------------------------------------------------------


def stored_ids(engine: Engine) -> list[str]:
    """Every stored event id, one per row (duplicates would show twice)."""
    with Session(engine) as session:
        return [str(i) for i in session.scalars(select(StripeEvent.event_id))]


def orphaned_leases(engine: Engine) -> int:
    """Pending events leased to a worker (their ``next_attempt_at`` lies ahead)."""
    with Session(engine) as session:
        now = session.scalar(select(func.now()))
        return int(
            session.scalar(
                select(func.count()).where(
                    StripeEvent.status == "pending", StripeEvent.next_attempt_at > now
                )
            )
            or 0
        )


def database_now(engine: Engine) -> Any:
    with Session(engine) as session:
        return session.scalar(select(func.now()))


def orphaned_since(engine: Engine, killed_at: Any, lease: float = LEASE_SECONDS) -> int:
    """Events a worker killed at ``killed_at`` had claimed and never applied.

    Call it a few seconds after the kill and before its lease runs out: a claim made
    before the kill leases until at most ``killed_at + lease``, any claim made since
    leases until later, and a live worker's batch is long finished.
    """
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    StripeEvent.status == "pending",
                    StripeEvent.next_attempt_at > func.now(),
                    StripeEvent.next_attempt_at <= killed_at + timedelta(seconds=lease),
                )
            )
            or 0
        )


def applications(engine: Engine) -> dict[tuple[str, int], int]:
    """(status, attempts) → number of events."""
    with Session(engine) as session:
        rows = session.execute(
            select(StripeEvent.status, StripeEvent.attempts, func.count()).group_by(
                StripeEvent.status, StripeEvent.attempts
            )
        ).all()
    return {(str(s), int(a)): int(c) for s, a, c in rows}


# -- a sender that behaves like Stripe -------------------------------------------------


@dataclass
class Delivery:
    """One delivery attempt as the sender saw it."""

    event_id: str
    started: float
    finished: float
    status: int | None  # None: no HTTP answer (connection refused/reset, timeout)
    duplicate: bool | None = None
    error: str | None = None


@dataclass
class Sender:
    """Signs and POSTs events like Stripe; ``send_until_acknowledged`` retries like it.

    Stripe retries a delivery that got no 2xx (or no answer) with growing delays; here
    the delays are short (``first_delay`` doubling up to ``max_delay``, jittered) so a
    check finishes in seconds. Every attempt is recorded in ``log``.
    """

    base_url: str
    first_delay: float = 0.1
    max_delay: float = 2.0
    give_up_after: float = 120.0
    timeout: float = 30.0
    log: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)
    _clients: list[httpx.Client] = field(default_factory=list)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def send_once(self, event: dict[str, Any], body: bytes | None = None) -> Delivery:
        body = body if body is not None else orjson.dumps(event)
        headers = {
            "Stripe-Signature": sign_payload(body.decode(), SECRET),
            "Content-Type": "application/json",
        }
        started = time.monotonic()
        try:
            response = self._client().post(PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            delivery = Delivery(
                event["id"], started, time.monotonic(), None, error=type(exc).__name__
            )
        else:
            duplicate = None
            if response.status_code == 200:
                duplicate = bool(response.json().get("duplicate"))
            delivery = Delivery(
                event["id"], started, time.monotonic(), response.status_code, duplicate
            )
        with self._lock:
            self.log.append(delivery)
        return delivery

    def send_until_acknowledged(self, event: dict[str, Any], rng: random.Random) -> Delivery:
        """Deliver ``event``, retrying non-2xx answers and failures with backoff."""
        body = orjson.dumps(event)
        deadline = time.monotonic() + self.give_up_after
        delay = self.first_delay
        while True:
            delivery = self.send_once(event, body)
            if delivery.status is not None and 200 <= delivery.status < 300:
                return delivery
            if time.monotonic() > deadline:
                return delivery  # the check sees an unacknowledged event and fails
            time.sleep(delay * rng.uniform(0.5, 1.5))
            delay = min(self.max_delay, delay * 2)


class Counter:
    """A thread-safe counter the kill/outage schedule can poll."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def summarize(log: list[Delivery]) -> dict[str, int]:
    """Counts over a sender's log."""
    answered = [d for d in log if d.status is not None]
    return {
        "attempts": len(log),
        "acknowledged": sum(1 for d in answered if d.status == 200),
        "answered_503": sum(1 for d in answered if d.status == 503),
        "no_answer": sum(1 for d in log if d.status is None),
        "other_status": sum(1 for d in answered if d.status not in (200, 503)),
    }


def engine_for(url: str) -> Engine:
    return create_engine(url)
