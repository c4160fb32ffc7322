"""The answer carrying a new API token (and every Admin API answer) is never cached."""

from __future__ import annotations

import httpx

from paydesk.web import create_app
from tests.support.admins import admin_token
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack


def test_a_new_api_token_is_answered_with_no_store(stack: Stack) -> None:
    token = admin_token(stack.sessions, stack.settings)
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        created = httpx.post(
            f"{base}/api/admin/tokens",
            json={"name": "ci", "role": "viewer", "days": 7},
            headers={"Authorization": f"Bearer {token}"},
        )
        listed = httpx.get(f"{base}/api/admin/tokens", headers={"Authorization": f"Bearer {token}"})
    assert created.status_code in (200, 201), created.text
    assert "pdk_" in created.text
    assert created.headers["cache-control"] == "no-store"
    assert listed.headers["cache-control"] == "no-store"
