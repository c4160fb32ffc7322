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
import logging
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DataError

from paydesk.logs import get_logger
from paydesk.webhooks.events import NotAnEvent, ParsedEvent
from paydesk.webhooks.store import insert_events, insert_rejection

log = get_logger(__name__)

MAX_BATCH = 512
REJECTION_LOGS_PER_MINUTE = 10


class UnstorableEvent(NotAnEvent):
    """The database refused one of the event's values; answered 400, recorded."""

    code = "unstorable_event"


def _is_unstorable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database refusing a value (not an outage)."""
    import psycopg

    return isinstance(exc, DataError | psycopg.DataError | OverflowError | struct.error)


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


class _ThreadWriter:
    """Writes a batch through SQLAlchemy in a worker thread (any database)."""

    max_inflight = 1

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def write(self, rows: list[dict[str, Any]]) -> set[str]:
        return await asyncio.to_thread(self._write, rows)

    def _write(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        with self._engine.begin() as connection:
            return insert_events(connection, rows)

    async def close(self) -> None:
        return None


# One statement per batch: each column travels as one array parameter in binary
# format (``%b``): the payloads reach the server as raw bytes, with no quoting on our
# side and no JSON or array-literal parsing on the server's (a JSON document per
# batch cost the server ~250 µs of CPU per 3.7 kB row; text-format arrays cost us
# ~1 ms per row in quoting). The new ids come back. In autocommit mode the statement
# is its own transaction, so when it returns the batch is committed.
_PG_INSERT = """
INSERT INTO stripe_events (event_id, type, api_version, created, livemode, object_id,
                           payload, source, received_at, status, attempts, next_attempt_at)
SELECT r.event_id, r.type, r.api_version, r.created, r.livemode, r.object_id, r.payload,
       r.source, now(), 'pending', 0, now()
FROM unnest(%b::text[], %b::text[], %b::text[], %b::int8[], %b::bool[], %b::text[],
            %b::text[], %b::text[])
     AS r(event_id, type, api_version, created, livemode, object_id, payload, source)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


class _BinaryArray:
    """A column of a batch, already in PostgreSQL's binary array format."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


_ARRAY_HEADER = struct.Struct("!iiiii")  # ndim, has-null flag, element oid, length, lower bound
_NULL = (-1).to_bytes(4, "big", signed=True)
_TEXT_OID, _INT8_OID, _BOOL_OID = 25, 20, 16


def _text_array(values: list[str | None]) -> _BinaryArray:
    """``text[]`` in binary: a length-prefixed UTF-8 string per element (-1 for NULL)."""
    parts: list[bytes] = []
    has_null = 0
    for value in values:
        if value is None:
            parts.append(_NULL)
            has_null = 1
        else:
            encoded = value.encode()
            parts.append(len(encoded).to_bytes(4, "big"))
            parts.append(encoded)
    header = _ARRAY_HEADER.pack(1, has_null, _TEXT_OID, len(values), 1)
    return _BinaryArray(header + b"".join(parts))


_INT8_ELEMENT = struct.Struct("!iq")
_BOOL_ELEMENTS = {False: b"\x00\x00\x00\x01\x00", True: b"\x00\x00\x00\x01\x01"}


def _int8s(values: list[int]) -> _BinaryArray:
    """``int8[]`` in binary: each element is its length (8) and a big-endian int64."""
    header = _ARRAY_HEADER.pack(1, 0, _INT8_OID, len(values), 1)
    return _BinaryArray(header + b"".join(_INT8_ELEMENT.pack(8, value) for value in values))


def _bools(values: list[bool]) -> _BinaryArray:
    """``bool[]`` in binary: each element is its length (1) and one byte."""
    header = _ARRAY_HEADER.pack(1, 0, _BOOL_OID, len(values), 1)
    return _BinaryArray(header + b"".join(_BOOL_ELEMENTS[bool(value)] for value in values))


class _PostgresWriter:
    """Writes a batch with psycopg's async driver on the event loop itself.

    Handing batches to a thread would make the writer wait for the GIL behind the
    busy event loop at every round trip; on the loop, a batch costs one round trip
    (the INSERT, committed by autocommit) and no thread switch. Up to
    ``max_inflight`` batches are written at once, each on its own connection.
    The columns are encoded here, straight into PostgreSQL's binary array format:
    psycopg's generic list dumper inspects every element in Python first, which
    cost more than the encoding itself.
    """

    max_inflight = 2

    def __init__(self, engine: Engine) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._idle: list[Any] = []

    async def _connect(self) -> Any:
        import psycopg
        from psycopg.adapt import Dumper
        from psycopg.pq import Format

        class BinaryArrayDumper(Dumper):
            format = Format.BINARY

            def dump(self, obj: Any) -> bytes:
                return obj.data  # type: ignore[no-any-return]

        connection = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=5
        )
        connection.adapters.register_dumper(_BinaryArray, BinaryArrayDumper)
        return connection

    async def write(self, rows: list[dict[str, Any]]) -> set[str]:
        connection = self._idle.pop() if self._idle else None
        if connection is None or connection.closed:
            connection = await self._connect()
        try:
            cursor = await connection.execute(_PG_INSERT, _columns(rows))
            inserted = {str(found[0]) for found in await cursor.fetchall()}
        except BaseException:
            await connection.close()
            raise
        self._idle.append(connection)
        return inserted

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


def _columns(rows: list[dict[str, Any]]) -> tuple[_BinaryArray, ...]:
    """The batch as the INSERT's eight array parameters, in its column order."""
    return (
        _text_array([row["event_id"] for row in rows]),
        _text_array([row["type"] for row in rows]),
        _text_array([row["api_version"] for row in rows]),
        _int8s([row["created"] for row in rows]),
        _bools([row["livemode"] for row in rows]),
        _text_array([row["object_id"] for row in rows]),
        _text_array([row["payload"] for row in rows]),
        _text_array([row.get("source", "webhook") for row in rows]),
    )


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
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer: _ThreadWriter | _PostgresWriter = (
            _PostgresWriter(engine)
            if engine.dialect.name == "postgresql"
            else _ThreadWriter(engine)
        )
        self.counters = IngestCounters()
        # reason -> (minute, lines logged in it, lines suppressed in it)
        self._rejection_logs: dict[str, tuple[int, int, int]] = {}
        # Hot path: skip building log events nobody will see.
        self._debug = logging.getLogger(__name__).isEnabledFor(logging.DEBUG)

    async def store(self, event: ParsedEvent) -> bool:
        """Store ``event`` durably; True if it was new."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(event.row(), loop.create_future())
        self._queue.append(waiter)
        self._start_flushes(loop)
        return await waiter.future

    def _start_flushes(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._queue and self._inflight < self._writer.max_inflight:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._inflight += 1
            # A fresh context: the batch belongs to no single request (no request_id).
            task = loop.create_task(self._flush(batch), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[_Waiter]) -> None:
        started = time.perf_counter()
        try:
            inserted = await self._writer.write([waiter.row for waiter in batch])
        except Exception as exc:  # noqa: BLE001 - every waiter learns the batch's fate
            if _is_unstorable(exc):
                # A row the database refuses (what validation did not foresee) must not
                # take the good rows of its batch down with it: each goes alone.
                await self._write_one_by_one(batch)
                return
            self.counters.unavailable += len(batch)
            log.warning("webhook_batch_failed", size=len(batch), error_type=type(exc).__name__)
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)
            return
        finally:
            self._inflight -= 1
            # Whoever queued meanwhile goes in the next batch.
            self._start_flushes(asyncio.get_running_loop())
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
        if self._debug:
            log.debug(
                "webhook_batch_committed",
                size=len(batch),
                ms=round((time.perf_counter() - started) * 1000, 2),
            )

    async def _write_one_by_one(self, batch: list[_Waiter]) -> None:
        for waiter in batch:
            try:
                inserted = await self._writer.write([waiter.row])
            except Exception as exc:  # noqa: BLE001 - this waiter learns its row's fate
                if not waiter.future.done():
                    refused = UnstorableEvent("The event has a value the database cannot store.")
                    waiter.future.set_exception(refused if _is_unstorable(exc) else exc)
                continue
            new = waiter.row["event_id"] in inserted
            if new:
                self.counters.stored += 1
            else:
                self.counters.duplicates += 1
            if not waiter.future.done():
                waiter.future.set_result(new)

    def _log_rejection(self, reason: str, source_address: str | None) -> None:
        """A WARNING per refusal, at most ``REJECTION_LOGS_PER_MINUTE`` per reason; the
        rest of the minute is summed up in one line, so a flood cannot fill the disk."""
        minute = int(time.monotonic() // 60)
        window, logged, suppressed = self._rejection_logs.get(reason, (minute, 0, 0))
        if window != minute:
            if suppressed:
                log.warning("webhook_rejections_suppressed", reason=reason, count=suppressed)
            window, logged, suppressed = minute, 0, 0
        if logged < REJECTION_LOGS_PER_MINUTE:
            log.warning("webhook_rejected", reason=reason, source_address=source_address)
            logged += 1
        else:
            suppressed += 1
        self._rejection_logs[reason] = (window, logged, suppressed)

    async def close(self) -> None:
        """Close the writer's connections (app shutdown)."""
        await self._writer.close()

    async def record_rejection(
        self, reason: str, source_address: str | None, body_bytes: int, detail: str | None = None
    ) -> None:
        """Count and record a refused delivery; never fails the request over it."""
        self.counters.rejected[reason] = self.counters.rejected.get(reason, 0) + 1
        self._log_rejection(reason, source_address)

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
