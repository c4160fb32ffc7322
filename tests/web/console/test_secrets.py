"""No password, TOTP seed, session id or API token in logs or pages, beyond the one-time display."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import httpx
import pyotp
import pytest

from paydesk.logs import configure_logging
from tests.support.admins import make_admin
from tests.support.stack import Stack
from tests.web.console.conftest import csrf_of


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", stream=buffer)
    yield buffer
    configure_logging("INFO", "console")
    logging.getLogger().setLevel(logging.INFO)


def test_secrets_stay_out_of_logs_and_pages(
    stack: Stack, base_url: str, log_output: io.StringIO
) -> None:
    admin = make_admin(stack.sessions, stack.settings, "admin", two_factor=False)
    seen_pages: list[str] = []
    with httpx.Client(base_url=base_url) as client:
        token = csrf_of(client.get("/admin/login").text)
        wrong = client.post(
            "/admin/login",
            data={"csrf_token": token, "email": admin.email, "password": admin.password + "x"},
        )
        seen_pages.append(wrong.text)
        client.post(
            "/admin/login",
            data={"csrf_token": token, "email": admin.email, "password": admin.password},
        )
        enrol = client.get("/admin/enrol").text
        seed_match = re.search(r'<code id="totp-key">([A-Z2-7]+)</code>', enrol)
        assert seed_match
        seed = seed_match.group(1)
        done = client.post(
            "/admin/enrol", data={"csrf_token": token, "code": pyotp.TOTP(seed).now()}
        )
        codes = re.findall(r"<code>([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})</code>", done.text)
        session_id = client.cookies.get("paydesk_admin_session", path="/admin")
        assert session_id
        created = client.post(
            "/admin/tokens",
            # Signed in, forms carry a token bound to the session.
            data={"csrf_token": csrf_of(client.get("/admin/").text), "name": "n", "role": "viewer"},
        ).text
        api_token = re.search(r'<code id="new-token">(pdk_[^<]+)</code>', created)
        assert api_token
        for path in ("/admin/", "/admin/access", "/admin/audit", "/admin/audit.csv"):
            seen_pages.append(client.get(path).text)
        api = client.get(
            "/api/admin/audit", headers={"Authorization": f"Bearer {api_token.group(1)}"}
        )
        seen_pages.append(api.text)
    logs = log_output.getvalue()
    assert "request" in logs  # the access log was captured at all
    secrets = [admin.password, seed, session_id, api_token.group(1), *codes]
    for secret in secrets:
        assert secret not in logs
        for page in seen_pages:
            assert secret not in page
