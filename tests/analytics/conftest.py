"""A migrated SQLite database shared by the examples of a property test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from paydesk.db.engine import create_engine, session_factory
from paydesk.db.migrate import upgrade_to_head
from tests.support.databases import throwaway_database


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[Session]:
    """One session on a migrated SQLite file; each example rolls its rows back."""
    with throwaway_database("sqlite", tmp_path) as url:
        upgrade_to_head(url)
        engine = create_engine(url)
        with session_factory(engine)() as session:
            yield session
        engine.dispose()
