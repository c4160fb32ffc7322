"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from paydesk.db.engine import create_engine
from paydesk.db.migrate import upgrade_to_head
from tests.support.databases import throwaway_database
from tests.support.stack import Stack, running_stack

DATABASE_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL."""
    with throwaway_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """A database upgraded to the head migration."""
    upgrade_to_head(database_url)
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on a migrated database, disposed after the test."""
    db_engine = create_engine(migrated_url)
    yield db_engine
    db_engine.dispose()


@pytest.fixture
def stack(migrated_url: str) -> Iterator[Stack]:
    """Sandbox + settings with bootstrapped tier prices + gateway + migrated database."""
    with running_stack(migrated_url) as running:
        yield running


@pytest.fixture
def session(stack: Stack) -> Iterator[Session]:
    """A session on the stack's database; rolled back unless the test commits."""
    with stack.sessions() as db_session:
        yield db_session
        db_session.rollback()
