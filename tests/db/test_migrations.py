"""Models and migrations agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from paydesk.db.engine import create_engine
from paydesk.db.migrate import alembic_config, current_revision, head_revision, upgrade_to_head
from paydesk.db.models import Base


def test_autogenerate_finds_no_difference_after_upgrade(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_every_model_table_exists_after_upgrade(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(migrated_url: str) -> None:
    command.downgrade(alembic_config(migrated_url), "base")
    engine = create_engine(migrated_url)
    try:
        assert current_revision(engine) is None
        assert not set(Base.metadata.tables) & set(inspect(engine).get_table_names())
        upgrade_to_head(migrated_url)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(migrated_url: str) -> None:
    upgrade_to_head(migrated_url)
    engine = create_engine(migrated_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
