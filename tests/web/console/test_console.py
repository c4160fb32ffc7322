"""The console over real HTTP: sign-in with TOTP, sessions, CSRF, headers, audit, actions."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from sqlalchemy import select

from paydesk.db.models import AuditEntry
from tests.support.admins import make_admin
from tests.support.stack import Stack
from tests.web.console.conftest import csrf_of

Console = Callable[[str], tuple[httpx.Client, str]]


def test_sign_in_needs_password_then_totp(stack: Stack, base_url: str) -> None:
    admin = make_admin(stack.sessions, stack.settings, "finance")
    with httpx.Client(base_url=base_url) as client:
        assert client.get("/admin/").headers["location"] == "/admin/login"
        token = csrf_of(client.get("/admin/login").text)
        wrong = client.post(
            "/admin/login", data={"csrf_token": token, "email": admin.email, "password": "nope" * 4}
        )
        assert wrong.status_code == 401
        assert "Wrong email, password or code" in wrong.text
        ok = client.post(
            "/admin/login",
            data={"csrf_token": token, "email": admin.email, "password": admin.password},
        )
        assert ok.headers["location"] == "/admin/2fa"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
        assert "Path=/admin" in cookie
        # Password alone does not open the console.
        assert client.get("/admin/").headers["location"] == "/admin/login"
        bad = client.post("/admin/2fa", data={"csrf_token": token, "code": "000000"})
        assert bad.status_code == 401
        good = client.post("/admin/2fa", data={"csrf_token": token, "code": admin.code()})
        assert good.headers["location"] == "/admin"
        # A fresh session id after the second factor.
        assert good.headers["set-cookie"].split(";")[0] != cookie.split(";")[0]
        page = client.get("/admin/")
        assert page.status_code == 200
        assert 'class="mode mode-test"' in page.text
        assert "<script>" not in page.text
        assert "style=" not in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
    with stack.sessions() as session:
        outcomes = [
            (row.action, row.outcome)
            for row in session.scalars(
                select(AuditEntry).where(AuditEntry.action == "auth.sign_in")
            )
        ]
    assert outcomes == [
        ("auth.sign_in", "failure"),
        ("auth.sign_in", "failure"),
        ("auth.sign_in", "success"),
    ]


def test_money_roles_must_enrol_in_two_factor(stack: Stack, base_url: str) -> None:
    admin = make_admin(stack.sessions, stack.settings, "support", two_factor=False)
    with httpx.Client(base_url=base_url) as client:
        token = csrf_of(client.get("/admin/login").text)
        response = client.post(
            "/admin/login",
            data={"csrf_token": token, "email": admin.email, "password": admin.password},
        )
        assert response.headers["location"] == "/admin/enrol"
        assert client.get("/admin/").headers["location"] == "/admin/login"
        page = client.get("/admin/enrol")
        assert "<svg" in page.text
        seed = re.search(r'<code id="totp-key">([A-Z2-7]+)</code>', page.text)
        assert seed
        import pyotp

        done = client.post(
            "/admin/enrol", data={"csrf_token": token, "code": pyotp.TOTP(seed.group(1)).now()}
        )
        assert done.status_code == 200
        codes = re.findall(r"<code>([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})</code>", done.text)
        assert len(codes) == 10
        assert client.get("/admin/").status_code == 200


def test_forms_without_the_csrf_token_are_refused(console_as: Console) -> None:
    client, token = console_as("admin")
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post("/admin/tokens", data={**data, "name": "x", "role": "viewer"})
        assert response.status_code == 403
        assert "csrf_failed" in response.text
    created = client.post(
        "/admin/tokens", data={"csrf_token": token, "name": "ci", "role": "viewer", "days": "7"}
    )
    assert created.status_code == 200
    raw = re.search(r'<code id="new-token">(pdk_[^<]+)</code>', created.text)
    assert raw
    # Shown once: the token list shows a prefix only.
    listing = client.get("/admin/access").text
    assert raw.group(1) not in listing
    assert raw.group(1)[:12] in listing


def test_sign_out_ends_the_session(console_as: Console) -> None:
    client, token = console_as("viewer")
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/admin/").headers["location"] == "/admin/login"


def test_audit_csv_export_and_filters(console_as: Console) -> None:
    client, _ = console_as("finance")
    page = client.get("/admin/audit", params={"action": "auth."})
    assert page.status_code == 200
    assert "auth.sign_in" in page.text
    csv_text = client.get("/admin/audit.csv", params={"action": "auth."}).text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,at,actor,action")
    assert all(",auth.sign_in," in line for line in lines[1:])


def test_hsts_is_sent_over_tls_only(base_url: str) -> None:
    plain = httpx.get(f"{base_url}/admin/login")
    assert "strict-transport-security" not in plain.headers
    proxied = httpx.get(f"{base_url}/admin/login", headers={"X-Forwarded-Proto": "https"})
    # uvicorn trusts proxy headers from loopback: the request counts as TLS.
    assert proxied.headers["strict-transport-security"].startswith("max-age=")
