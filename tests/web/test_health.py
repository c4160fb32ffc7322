"""Liveness and readiness over real HTTP, on both databases."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import httpx
from alembic import command

from paydesk.db.migrate import alembic_config, head_revision
from paydesk.settings import load_settings
from paydesk.web import create_app
from tests.support.servers import free_port, serve_in_thread


def serve(database_url: str) -> AbstractContextManager[str]:
    settings = load_settings({"PAYDESK_DATABASE_URL": database_url})
    return serve_in_thread(create_app(settings))


def test_healthz_answers_while_the_process_runs(migrated_url: str) -> None:
    with serve(migrated_url) as base:
        response = httpx.get(f"{base}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"].startswith("req_")


def test_readyz_is_200_at_head(migrated_url: str) -> None:
    with serve(migrated_url) as base:
        response = httpx.get(f"{base}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": head_revision()}


def test_readyz_is_503_before_migrations(database_url: str) -> None:
    with serve(database_url) as base:
        response = httpx.get(f"{base}/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "migrations_pending"
    assert error["expected"] == head_revision()
    assert error["current"] is None


def test_readyz_is_503_when_behind_on_migrations(migrated_url: str) -> None:
    command.downgrade(alembic_config(migrated_url), "base")
    with serve(migrated_url) as base:
        response = httpx.get(f"{base}/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "migrations_pending"


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # A PostgreSQL URL pointing at a port where nothing listens.
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with serve(url) as base:
        ready = httpx.get(f"{base}/readyz", timeout=15)
        alive = httpx.get(f"{base}/healthz")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "database_unreachable"
    assert alive.status_code == 200


def test_openapi_document_is_served(migrated_url: str) -> None:
    with serve(migrated_url) as base:
        response = httpx.get(f"{base}/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/healthz" in paths
    assert "/readyz" in paths


def test_readyz_stays_ready_when_a_newer_release_migrated_ahead(migrated_url: str) -> None:
    # During a rolling deploy the new release migrates first; old pods must stay ready.
    from sqlalchemy import text

    from paydesk.db.engine import create_engine

    engine = create_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with serve(migrated_url) as base:
        response = httpx.get(f"{base}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": "9999_future", "schema_ahead": True}
