"""Real databases for tests: a fresh SQLite file or a throwaway PostgreSQL database.

PostgreSQL is reached at ``PAYDESK_TEST_POSTGRES_URL`` (default: the local server,
user ``postgres``, trust auth). Under CI (``CI=true``) an unreachable server fails
the run; elsewhere the PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    """URL of a PostgreSQL database we may create other databases from."""
    return os.environ.get("PAYDESK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def require_postgres() -> None:
    """Skip (or, under CI, fail) when PostgreSQL cannot be reached."""
    engine = create_engine(postgres_admin_url(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        message = f"PostgreSQL not reachable at {postgres_admin_url()}: {type(exc).__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI requires it)")
        pytest.skip(message)
    finally:
        engine.dispose()


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards."""
    require_postgres()
    name = f"paydesk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def throwaway_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of ``kind`` (``sqlite`` or ``postgresql``), as a URL."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'paydesk.db'}"
        return
    with throwaway_postgres() as url:
        yield url
