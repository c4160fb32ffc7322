"""Engine settings per backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from paydesk.db.engine import SQLITE_BUSY_TIMEOUT_MS, create_engine, normalize_url


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert (
                connection.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_TIMEOUT_MS
            )
        assert (tmp_path / "sub" / "x.db").exists()
    finally:
        engine.dispose()


def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
            connection.execute(
                text("CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id))")
            )
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text("INSERT INTO child (id, p) VALUES (1, 42)"))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///var/x.db", "sqlite:///var/x.db"),
    ],
)
def test_postgres_urls_use_psycopg3(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_sqlite_writers_queue_instead_of_failing(tmp_path: Path) -> None:
    # A transaction that read, then writes after another writer committed, used to
    # fail at once with "database is locked"; with BEGIN IMMEDIATE it just waits.
    import threading

    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (n INTEGER)"))
        errors: list[Exception] = []

        def writer(n: int) -> None:
            try:
                with engine.begin() as connection, connection.begin_nested():
                    # The shape of ensure_customer: a savepoint, a read, then a write.
                    connection.execute(text("SELECT count(*) FROM t")).scalar()
                    connection.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 40
    finally:
        engine.dispose()


def test_sqlite_writers_of_one_process_take_turns_longer_than_the_busy_timeout(
    tmp_path: Path,
) -> None:
    """30 transactions holding the write lock 0.25 s each, all at once: the last one
    waits ~7 s, beyond SQLite's 5 s busy timeout, and still none fails."""
    import threading
    import time

    from paydesk.db import engine as engine_module

    engine = create_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    order: list[int] = []
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with engine.begin() as connection:
                order.append(n)
                connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                time.sleep(0.25)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = []
    for n in range(30):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        time.sleep(0.01)
    started = time.monotonic()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert failures == []
        assert time.monotonic() - started > SQLITE_BUSY_TIMEOUT_MS / 1000
        assert sorted(order) == list(range(30))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 30
        queue = engine_module.writer_queue(str(tmp_path / "turns.db"))
        assert queue.waits >= 25
    finally:
        engine.dispose()


def test_no_write_turn_in_time_is_database_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from sqlalchemy.exc import OperationalError

    from paydesk.db import engine as engine_module

    monkeypatch.setattr(engine_module, "SQLITE_WRITER_WAIT_SECONDS", 0.2)
    engine = create_engine(f"sqlite:///{tmp_path / 'late.db'}")
    holding = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with engine.begin():
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(OperationalError, match="database is locked"), engine.begin():
            pass
    finally:
        done.set()
        thread.join(10)
    with engine.begin() as connection:  # the turn was handed back: all is well again
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
