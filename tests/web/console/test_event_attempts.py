"""An event's failed attempts on the console detail page and in the Admin API, over
real HTTP, after a real worker failed on it twice and then applied it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.process import Worker
from paydesk.webhooks.store import insert_events
from tests.support.admins import admin_token
from tests.support.stack import Stack
from tests.webhooks.support import event_dict, payment_intent

Console = Any


class Flaky:
    """An ``after_apply`` hook that raises ``error`` while it is set (a failing handler)."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def __call__(self, _session: Session, _type: str, _payload: dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error


@pytest.fixture
def flaky_event(stack: Stack) -> str:
    """An event the worker failed on twice (once with a card number) and then applied."""
    event = event_dict("payment_intent.succeeded", payment_intent("pi_flaky_console"))
    with stack.engine.begin() as connection:
        insert_events(connection, [event_from_dict(event).row()])
    flaky = Flaky()
    worker = Worker(
        stack.engine, after_apply=flaky, backoff=lambda _attempts: 0.0, name="console-worker"
    )
    flaky.error = RuntimeError("mirror <b>locked</b> for card 4000 0000 0000 9995")
    assert worker.run_once() == 1
    flaky.error = TimeoutError("ledger timed out")
    assert worker.run_once() == 1
    flaky.error = None
    assert worker.run_once() == 1
    return str(event["id"])


def test_the_console_detail_lists_the_failed_attempts(
    stack: Stack, console_as: Console, flaky_event: str
) -> None:
    client, _token = console_as("viewer")
    page = client.get(f"/admin/events/{flaky_event}")
    assert page.status_code == 200
    text = page.text
    assert 'id="failed-attempts"' in text
    table = text.split('id="failed-attempts"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 3  # the header and two attempts
    assert (
        "<code>RuntimeError</code>: mirror &lt;b&gt;locked&lt;/b&gt; for card [REDACTED]" in table
    )
    assert "<code>TimeoutError</code>: ledger timed out" in table
    assert "console-worker" in table
    assert "9995" not in text
    assert 'id="event-status"><span class="status status-processed">' in text
    # An event that never failed says so.
    other = event_dict("payment_intent.succeeded", payment_intent("pi_fine_console"))
    with stack.engine.begin() as connection:
        insert_events(connection, [event_from_dict(other).row()])
    Worker(stack.engine).drain()
    fine = client.get(f"/admin/events/{other['id']}").text
    assert 'id="failed-attempts-none"' in fine
    assert 'id="failed-attempts"' not in fine


def test_the_admin_api_returns_the_failed_attempts(
    stack: Stack, base_url: str, flaky_event: str
) -> None:
    token = admin_token(stack.sessions, stack.settings, "viewer")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, timeout=30, headers=headers) as api:
        response = api.get(f"/api/admin/events/{flaky_event}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["attempts"], body["outcome"]) == ("processed", 3, "applied")
        assert "payload" not in body
        attempts = body["failed_attempts"]
        assert [(a["attempt"], a["error_type"], a["outcome"]) for a in attempts] == [
            (1, "RuntimeError", "failed"),
            (2, "TimeoutError", "failed"),
        ]
        assert attempts[0]["error_message"] == "mirror <b>locked</b> for card [REDACTED]"
        assert attempts[1]["worker"] == "console-worker"
        missing = api.get("/api/admin/events/evt_missing")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"]
        for hostile in ("%00", "x" * 5000, "evt_%27%20OR%201%3D1"):
            assert api.get(f"/api/admin/events/{hostile}").status_code < 500
    anonymous = httpx.get(f"{base_url}/api/admin/events/{flaky_event}", timeout=30)
    assert anonymous.status_code == 401
    forged = httpx.get(
        f"{base_url}/api/admin/events/{flaky_event}",
        headers={"Authorization": "Bearer pd_not_a_real_token"},
        timeout=30,
    )
    assert forged.status_code == 401
