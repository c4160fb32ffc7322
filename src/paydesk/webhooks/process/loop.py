"""The worker: claim a batch, apply it, count and release; round after round.

``Worker`` ties the two other modules together: ``lease`` (who owns which stored
events, in SQL) and ``apply`` (the two-pass apply of one batch and its counts).
A round first retries the releases that failed earlier, then claims a batch and
applies it; a batch that failed as a whole (or lost its lease) is released at
once, and the events whose objects were busy are released for the next round.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from paydesk.db.engine import session_factory
from paydesk.logs import get_logger
from paydesk.settings import Settings
from paydesk.webhooks.handlers import Fetcher, TierOf, gateway_fetcher
from paydesk.webhooks.process import apply as batch
from paydesk.webhooks.process.apply import (
    DEFAULT_MAX_ATTEMPTS,
    AfterApply,
    Rules,
    WorkerCounters,
    backoff_seconds,
)
from paydesk.webhooks.process.lease import LEASE, Lease, LeaseLost, Leases

if TYPE_CHECKING:
    from paydesk.stripe_gateway.http import Observer

log = get_logger(__name__)

DEFAULT_BATCH = 200

# Called after each non-empty batch with its result (``committed``, ``lease_lost`` or
# ``rolled_back``), its duration in seconds and its size (the metrics layer).
BatchObserver = Callable[[str, float, int], None]


class Worker:
    """Applies stored events to the mirror. ``run_once()`` handles one batch."""

    def __init__(
        self,
        engine: Engine,
        *,
        tier_of: TierOf = lambda _price: None,
        fetcher: Fetcher | None = None,
        api_version: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Callable[[int], float] = backoff_seconds,
        name: str | None = None,
        lease: timedelta | None = None,
        batch_observer: BatchObserver | None = None,
        after_apply: AfterApply | None = None,
    ) -> None:
        self._engine = engine
        # Called with each applied event, inside its transaction (e.g. the email outbox).
        self._after_apply = after_apply
        self._sessions = session_factory(engine)
        self._tier_of = tier_of
        self._fetcher = fetcher
        self._api_version = api_version
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._postgres = engine.dialect.name == "postgresql"
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._leases = Leases(engine, name=self.name, lease=lease if lease is not None else LEASE)
        self.counters = WorkerCounters()
        # The counters are written by the working thread and read by a metrics scrape.
        self._counters_lock = threading.Lock()
        self._batch_observer = batch_observer

    def claim(self) -> Lease:
        """Lease a batch of due events to this worker, under a new token."""
        return self._leases.claim(self._batch_size)

    def _release(self, token: str, ids: Sequence[int]) -> None:
        # Never raises; a release given up is kept for the next round, and counted.
        if not self._leases.release(token, ids):
            with self._counters_lock:
                self.counters.release_failures += 1

    def run_once(self) -> int:
        """Claim and apply one batch; returns how many events were handled.

        Releases that failed earlier are retried first.
        """
        try:
            self._leases.settle()
            handled = self.apply(self.claim())
        except Exception:
            with self._counters_lock:
                self.counters.round_failures += 1
                self.counters.last_round_ok = False
            raise
        with self._counters_lock:
            self.counters.last_round_ok_at = time.time()
            self.counters.last_round_ok = True
        return handled

    def snapshot(self) -> WorkerCounters:
        """A consistent copy of the counters (safe from another thread)."""
        with self._counters_lock:
            return self.counters.copy()

    @property
    def unreleased(self) -> int:
        """Events whose release failed and is kept for a later attempt."""
        return self._leases.unreleased

    @property
    def refetches(self) -> int:
        """Objects re-fetched from Stripe since start (0 without Stripe access)."""
        return self._fetcher.fetched if self._fetcher is not None else 0

    def _observe_batch(self, result: str, started: float, size: int) -> None:
        if self._batch_observer is not None:
            self._batch_observer(result, time.perf_counter() - started, size)

    def _rules(self) -> Rules:
        # Read per batch: the worker's settings are plain attributes.
        return Rules(
            tier_of=self._tier_of,
            api_version=self._api_version,
            max_attempts=self._max_attempts,
            backoff=self._backoff,
            after_apply=self._after_apply,
            postgres=self._postgres,
            worker=self.name,
        )

    def _prefetch(self, session: Session, payloads: dict[int, dict[str, Any]]) -> None:
        """Load the batch's mirror rows before the optimistic pass (``apply.prefetch``).

        A method so that tests can act at this point of a running batch.
        """
        batch.prefetch(session, payloads)

    def apply(self, lease: Lease) -> int:
        """Apply a claimed batch; returns how many of its events were handled.

        The two passes are ``apply.apply_lease``'s. Events no longer leased under
        ``lease.token`` are left alone (see ``lease``); if the outcome cannot be
        written because a row changed hands, the batch is rolled back, nothing is
        counted and 0 is returned. Any other failure rolls the batch back, releases
        it and raises.
        """
        ids = lease.ids
        if not ids:
            return 0
        started = time.perf_counter()
        try:
            tally, busy = batch.apply_lease(
                self._sessions, lease, self._rules(), self._fetcher, prefetch=self._prefetch
            )
        except LeaseLost as lost:
            with self._counters_lock:
                self.counters.lease_lost += lost.lost
            self._observe_batch("lease_lost", started, len(ids))
            log.warning(
                "webhook_lease_lost",
                worker=self.name,
                size=len(ids),
                lost=lost.lost,
                action="batch rolled back",
            )
            self._release(lease.token, ids)
            return 0
        except Exception:
            # The whole batch rolled back (e.g. a lost connection): make it due again.
            log.exception("webhook_batch_rolled_back", size=len(ids))
            self._observe_batch("rolled_back", started, len(ids))
            self._release(lease.token, ids)
            raise
        with self._counters_lock:
            tally.add_to(self.counters)
        self._observe_batch("committed", started, len(ids))
        if tally.lease_lost:
            log.warning(
                "webhook_lease_lost",
                worker=self.name,
                size=len(ids),
                lost=tally.lease_lost,
                action="events skipped",
            )
        self._release(lease.token, busy)
        return len(ids) - len(busy) - tally.lease_lost

    def drain(self, *, timeout: float = 60.0) -> int:
        """Apply batches until nothing is due (or ``timeout``); returns events handled."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            handled = self.run_once()
            total += handled
            if handled == 0 and not self._leases.has_due(self._sessions):
                break
        return total

    def run(self, stop: threading.Event, *, idle_seconds: float = 0.5) -> None:
        """Work until ``stop`` is set, polling every ``idle_seconds`` when idle."""
        log.info("webhook_worker_started", worker=self.name)
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep working; the batch was released
                log.warning("webhook_worker_round_failed", error_type=type(exc).__name__)
                handled = 0
                stop.wait(idle_seconds)
            if handled == 0:
                stop.wait(idle_seconds)
        # A release that failed in the last rounds gets one more chance on the way out.
        self._leases.settle()
        log.info("webhook_worker_stopped", worker=self.name)


def build_worker(
    settings: Settings,
    engine: Engine,
    *,
    observers: Sequence[Observer] = (),
    **options: Any,
) -> Worker:
    """The worker for ``settings``: tier prices from settings, re-fetching when a key is set.

    ``observers`` see every HTTP attempt of the worker's Stripe gateway (metrics).
    """
    from paydesk.billing.tiers import tier_resolver
    from paydesk.mail.outbox import pay_link_notice
    from paydesk.stripe_gateway import build_gateway, pinned_api_version

    fetcher = None
    if settings.stripe_secret_key is not None:
        # The fetch happens inside the batch's transaction: on SQLite that holds the
        # database's one write turn, so an event over the rate limit is deferred at
        # once instead of waiting for a token there.
        fetcher = gateway_fetcher(
            build_gateway(settings, observers=list(observers)),
            max_wait=0.0 if engine.dialect.name == "sqlite" else 2.0,
        )
    return Worker(
        engine,
        tier_of=tier_resolver(settings),
        fetcher=fetcher,
        api_version=pinned_api_version(),
        after_apply=options.pop("after_apply", pay_link_notice(settings)),
        **options,
    )
