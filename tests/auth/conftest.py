"""Auth tests run on a migrated database (SQLite and PostgreSQL) with plain settings."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from paydesk.db.engine import session_factory
from paydesk.settings import Settings, load_settings


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return load_settings(
        {
            "PAYDESK_DATABASE_URL": migrated_url,
            "PAYDESK_SECRET_KEY": "auth-tests-secret-key-" + "k" * 20,
        }
    )


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)
