"""Engine and session factories built from a database URL.

SQLite gets WAL, foreign keys and a busy timeout on every connection, so the
embedded default behaves like a small server database; PostgreSQL uses psycopg 3.

SQLite has one writer at a time. Every transaction starts as a writer (``BEGIN
IMMEDIATE``, see ``_on_sqlite_begin``), and the transactions of one process queue
for it first-come, first-served on an in-process queue per database file
(:class:`WriterQueue`) before asking SQLite. SQLite's own busy handler polls with
growing sleeps, so under load a waiter keeps waking up just after someone else took
the lock and can starve until its timeout even though the lock was free again and
again (the demo's webhook endpoint, worker, console and seeding share one file in
one process: that is how deliveries and pages failed with "database is locked").
Between processes, the busy timeout still applies. A connection with the execution
option ``paydesk_read_only=True`` reads in a plain (deferred) transaction instead,
without a turn: WAL readers never wait for the writer.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 5000
# How long a transaction waits for its turn in the process's writer queue before it
# fails with "database is locked" (answered 503; Stripe retries a delivery).
SQLITE_WRITER_WAIT_SECONDS = 30.0


class WriterQueue:
    """A first-come, first-served lock: the longest waiter gets the write turn next.

    Released by whichever thread ends the transaction (a request's session may be
    closed on another thread than the one that opened it), unlike an RLock.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False
        self.waits = 0  # how many acquisitions had to queue (tests, tuning)

    def acquire(self, timeout: float) -> bool:
        """Wait for the turn up to ``timeout`` seconds; True once it is ours."""
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
            self.waits += 1
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ran out
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        """Hand the turn to the longest waiter, or free it."""
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # stays held: ownership moves on
            else:
                self._held = False


_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def writer_queue(database: str) -> WriterQueue:
    """The process's writer queue of a SQLite file (one per file, shared by engines)."""
    key = os.path.realpath(database)
    with _queues_lock:
        queue = _queues.get(key)
        if queue is None:
            queue = _queues[key] = WriterQueue()
        return queue


_HOLDS = "paydesk_writer_turn"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` and ``postgres://`` URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from pysqlite: it would BEGIN lazily (deferred),
    # and a deferred transaction that read before another writer committed fails
    # at once with "database is locked" when it tries to write (the busy timeout
    # cannot help). _on_sqlite_begin starts every transaction as a writer instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_listeners(engine: Engine, queue: WriterQueue | None) -> None:
    def release(info: dict[str, Any]) -> None:
        if info.pop(_HOLDS, False) and queue is not None:
            queue.release()

    def on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("paydesk_read_only"):
            # A transaction that only reads needs no turn: WAL readers never wait.
            connection.exec_driver_sql("BEGIN")
            return
        # SQLite has one writer at a time; taking the write lock up front makes
        # concurrent transactions queue instead of failing.
        if queue is not None and not connection.info.get(_HOLDS):
            if not queue.acquire(SQLITE_WRITER_WAIT_SECONDS):
                raise OperationalError(
                    "BEGIN IMMEDIATE",
                    None,
                    sqlite3.OperationalError(
                        f"database is locked (no turn within {SQLITE_WRITER_WAIT_SECONDS:g} s)"
                    ),
                )
            connection.info[_HOLDS] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(connection.info)
            raise

    def on_end(connection: Any) -> None:
        release(connection.info)

    def on_return(_dbapi: Any, record: Any) -> None:
        # A connection handed back (or dropped) mid-transaction: its turn ends too.
        if record is not None:
            release(record.info)

    def on_reset(dbapi: Any, record: Any, _state: Any) -> None:
        on_return(dbapi, record)

    def on_invalidate(dbapi: Any, record: Any, _exception: Any) -> None:
        on_return(dbapi, record)

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    event.listen(engine.pool, "reset", on_reset)
    event.listen(engine.pool, "checkin", on_return)
    event.listen(engine.pool, "invalidate", on_invalidate)


def create_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``url``; creates the SQLite file's folder if needed.

    From then on, every ORM session's transactions keep the analytics rollups in
    step with the mirror rows they write, in the same transaction
    (``paydesk.analytics.rollups``).
    """
    from paydesk.analytics.rollups import install

    install()
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa_create_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine, "connect", _on_sqlite_connect)
        in_file = bool(database) and database != ":memory:"
        _sqlite_listeners(engine, writer_queue(str(database)) if in_file else None)
        return engine
    return sa_create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"connect_timeout": 5},
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that never expire loaded objects on commit (the caller owns commits)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
