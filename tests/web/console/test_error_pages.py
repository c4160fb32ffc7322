"""Console error pages that depend on nothing that failed, and the console's banners."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.engine import make_url

from paydesk.auth import sessions as admin_sessions
from paydesk.settings import load_settings
from paydesk.web import create_app
from paydesk.web.notices import Notices, SeedProgress
from tests.support.admins import make_admin
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack, stack_environment
from tests.web.console.conftest import sign_in


def _assert_plain_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["retry-after"] == "5"
    page = response.text
    assert "<main" in page
    assert "</html>" in page
    assert "The database is busy or unavailable" in page
    assert "/admin/static/console.css" in page
    assert f"<code>{response.headers['x-request-id']}</code>" in page
    assert "database_unavailable" in page


def test_a_locked_sqlite_database_gives_a_plain_503_page(
    stack: Stack, console_as: Callable[[str], tuple[httpx.Client, str]]
) -> None:
    url = make_url(stack.settings.database_url.get_secret_value())
    if url.get_backend_name() != "sqlite":
        pytest.skip("a write lock held elsewhere is SQLite's case; PostgreSQL's is below")
    client, _token = console_as("viewer")
    holder = sqlite3.connect(str(url.database), isolation_level=None, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")  # what a long writer does to everyone else
    try:
        started = time.monotonic()
        response = client.get("/admin/")
        _assert_plain_503(response)
        assert time.monotonic() - started < 30
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.get("/admin/").status_code == 200  # and back once the lock is gone


def test_an_unreachable_database_gives_the_same_page(stack: Stack) -> None:
    env = stack_environment(stack.sandbox.url, "postgresql://paydesk@127.0.0.1:1/none")
    settings = load_settings(env)
    with serve_in_thread(create_app(settings)) as base:
        # A session cookie makes the page look the session up in the database.
        response = httpx.get(f"{base}/admin/", cookies={admin_sessions.COOKIE: "x" * 43})
    _assert_plain_503(response)


def test_banners_show_seeding_progress_and_missing_events(stack: Stack) -> None:
    progress = SeedProgress(customers_total=200, customers_done=120, months_total=5, month=3)

    class Gap:
        missing = 7
        summary = "7 events missing, backfilling"

    class Reconciler:
        last = Gap()

    notices = Notices(seed=progress, reconciler=Reconciler())
    admin = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
    with serve_in_thread(create_app(stack.settings, engine=stack.engine, notices=notices)) as base:
        client, _token = sign_in(base, admin)
        page = client.get("/admin/").text
        assert "Seeding demo data: 120/200 customers, month 3/5" in page
        assert "7 events missing, backfilling" in page
        progress.done = True
        Reconciler.last = None  # type: ignore[assignment]
        page = client.get("/admin/").text
        assert "Seeding demo data" not in page
        assert "events missing" not in page
        client.close()
