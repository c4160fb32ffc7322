"""Durable ingest with group commit.

Each delivery waits until its row is committed before it is acknowledged, but
concurrently arriving deliveries share one transaction: while one batch is being
written and flushed, newcomers queue up and go together in the next. A commit
costs one flush whatever the batch size, so throughput grows with concurrency
while every 2xx still follows a durable commit.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from paydesk.logs import get_logger
from paydesk.webhooks.events import ParsedEvent
from paydesk.webhooks.store import insert_events, insert_rejection

log = get_logger(__name__)

MAX_BATCH = 512


@dataclass
class IngestCounters:
    """Process-local counts since start (exported by the metrics layer)."""

    stored: int = 0
    duplicates: int = 0
    batches: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    unavailable: int = 0


@dataclass
class _Waiter:
    row: dict[str, Any]
    future: asyncio.Future[bool]


class Inbox:
    """Stores parsed events in ``stripe_events``; one per event loop (one per process).

    ``await inbox.store(event)`` returns True for a new event, False for a
    duplicate, after the commit; a database error is raised to every waiter of
    the failed batch (the endpoint answers 503 and Stripe retries).
    """

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[_Waiter] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None
        self.counters = IngestCounters()

    async def store(self, event: ParsedEvent) -> bool:
        """Store ``event`` durably; True if it was new."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(event.row(), loop.create_future())
        self._queue.append(waiter)
        if not self._flushing:
            self._flushing = True
            # A fresh context: the batch belongs to no single request (no request_id).
            self._task = loop.create_task(self._flush_loop(), context=contextvars.Context())
        return await waiter.future

    async def _flush_loop(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._flush(batch)
        finally:
            self._flushing = False

    async def _flush(self, batch: list[_Waiter]) -> None:
        started = time.perf_counter()
        try:
            inserted = await asyncio.to_thread(self._write, [waiter.row for waiter in batch])
        except Exception as exc:  # noqa: BLE001 - every waiter learns the batch's fate
            self.counters.unavailable += len(batch)
            log.warning("webhook_batch_failed", size=len(batch), error_type=type(exc).__name__)
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)
            return
        self.counters.batches += 1
        seen: set[str] = set()
        for waiter in batch:
            event_id = waiter.row["event_id"]
            # The first of several copies in one batch is the one that was stored.
            new = event_id in inserted and event_id not in seen
            seen.add(event_id)
            if new:
                self.counters.stored += 1
            else:
                self.counters.duplicates += 1
            if not waiter.future.done():
                waiter.future.set_result(new)
        log.debug(
            "webhook_batch_committed",
            size=len(batch),
            ms=round((time.perf_counter() - started) * 1000, 2),
        )

    def _write(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        with self._engine.begin() as connection:
            return insert_events(connection, rows)

    async def record_rejection(
        self, reason: str, source_address: str | None, body_bytes: int, detail: str | None = None
    ) -> None:
        """Count and record a refused delivery; never fails the request over it."""
        self.counters.rejected[reason] = self.counters.rejected.get(reason, 0) + 1
        log.warning("webhook_rejected", reason=reason, source_address=source_address)

        def write() -> None:
            with self._engine.begin() as connection:
                insert_rejection(
                    connection,
                    reason=reason,
                    source_address=source_address,
                    body_bytes=body_bytes,
                    detail=detail,
                )

        try:
            await asyncio.to_thread(write)
        except Exception as exc:  # noqa: BLE001 - the 400 stands even if the record fails
            log.warning("webhook_rejection_not_recorded", error_type=type(exc).__name__)
