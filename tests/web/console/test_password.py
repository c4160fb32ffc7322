"""The console's change-password page, and the TOTP enrolment page's stable seed."""

from __future__ import annotations

import json
import re
import time

import httpx
import pyotp
from sqlalchemy import select

from paydesk.db.models import AdminSession, AdminUser, AuditEntry
from tests.support.admins import PASSWORD, SeededAdmin, make_admin
from tests.support.stack import Stack
from tests.web.console.conftest import csrf_of, sign_in

NEW_PASSWORD = "a much longer new passphrase"


def change(client: httpx.Client, token: str, current: str, new: str, again: str) -> httpx.Response:
    return client.post(
        "/admin/password",
        data={
            "csrf_token": token,
            "current_password": current,
            "new_password": new,
            "new_password_repeat": again,
        },
    )


def entries(stack: Stack, action: str) -> list[tuple[str, dict[str, object]]]:
    with stack.sessions() as session:
        return [
            (row.outcome, json.loads(row.after or "{}"))
            for row in session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        ]


def can_sign_in(base_url: str, admin: SeededAdmin, password: str) -> bool:
    with httpx.Client(base_url=base_url) as client:
        token = csrf_of(client.get("/admin/login").text)
        response = client.post(
            "/admin/login", data={"csrf_token": token, "email": admin.email, "password": password}
        )
        return response.status_code == 303


def test_change_password_signs_out_the_other_sessions(stack: Stack, base_url: str) -> None:
    # Without two-factor, so that one admin can sign in twice within one TOTP step.
    admin = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
    here, token = sign_in(base_url, admin)
    elsewhere, _ = sign_in(base_url, admin)
    other = make_admin(stack.sessions, stack.settings, "finance")
    bystander, _ = sign_in(base_url, other)
    try:
        page = here.get("/admin/password")
        assert page.status_code == 200
        assert 'autocomplete="current-password"' in page.text
        assert 'href="/admin/password"' in here.get("/admin/").text
        response = change(here, token, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        assert response.status_code == 303
        assert response.headers["location"] == "/admin/password?changed=1"
        assert "password was changed" in here.get(response.headers["location"]).text
        # This session goes on; the admin's other session ended; other admins' did not.
        assert here.get("/admin/").status_code == 200
        assert elsewhere.get("/admin/").headers["location"] == "/admin/login"
        assert bystander.get("/admin/").status_code == 200
    finally:
        for client in (here, elsewhere, bystander):
            client.close()
    assert not can_sign_in(base_url, admin, PASSWORD)
    assert can_sign_in(base_url, admin, NEW_PASSWORD)
    assert entries(stack, "admin.change_password") == [("success", {"other_sessions_ended": 1})]
    with stack.sessions() as session:
        user = session.scalars(select(AdminUser).where(AdminUser.email == admin.email)).one()
        assert user.password_hash.startswith("$argon2id$")
        everything = " ".join(
            f"{row.before} {row.after} {row.target}" for row in session.scalars(select(AuditEntry))
        )
    assert NEW_PASSWORD not in everything
    assert PASSWORD not in everything


def test_refusals_are_shown_audited_and_change_nothing(stack: Stack, base_url: str) -> None:
    admin = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
    client, token = sign_in(base_url, admin)
    try:
        cases = [
            (("", NEW_PASSWORD, NEW_PASSWORD), "missing_field"),
            ((PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!"), "passwords_differ"),
            ((PASSWORD, "short", "short"), "password_too_short"),
            ((PASSWORD, PASSWORD, PASSWORD), "password_unchanged"),
            (("not the password", NEW_PASSWORD, NEW_PASSWORD), "wrong_current_password"),
        ]
        for (current, new, again), code in cases:
            response = change(client, token, current, new, again)
            assert response.status_code == 422, (code, response.text)
            assert 'role="alert"' in response.text
            # The form is shown again, empty: no password is echoed back.
            assert NEW_PASSWORD not in response.text
            assert PASSWORD not in response.text
        # Without the CSRF token the form is refused before anything is checked.
        forged = client.post(
            "/admin/password",
            data={
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "new_password_repeat": NEW_PASSWORD,
            },
        )
        assert forged.status_code == 403
        assert "csrf_failed" in forged.text
        assert client.get("/admin/").status_code == 200
    finally:
        client.close()
    assert entries(stack, "admin.change_password") == [
        ("failure", {"error": code, "via": "console", **({"field": f} if f else {})})
        for code, f in [
            ("missing_field", None),
            ("passwords_differ", "new_password_repeat"),
            ("password_too_short", "new_password"),
            ("password_unchanged", "new_password"),
            ("wrong_current_password", "current_password"),
        ]
    ]
    with stack.sessions() as session:
        user = session.scalars(select(AdminUser).where(AdminUser.email == admin.email)).one()
        assert user.failed_logins == 1  # only the wrong current password counts
    assert can_sign_in(base_url, admin, PASSWORD)


def test_guessing_the_current_password_locks_the_account(stack: Stack, base_url: str) -> None:
    admin = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
    client, token = sign_in(base_url, admin)
    limit = stack.settings.admin_max_failed_logins
    try:
        for _ in range(limit - 1):
            response = change(client, token, "a wrong guess", NEW_PASSWORD, NEW_PASSWORD)
            assert response.status_code == 422
        last = change(client, token, "a wrong guess", NEW_PASSWORD, NEW_PASSWORD)
        assert last.status_code == 303
        assert last.headers["location"] == "/admin/login"
        assert client.get("/admin/").headers["location"] == "/admin/login"
    finally:
        client.close()
    # Locked: even the right password is refused for now.
    assert not can_sign_in(base_url, admin, PASSWORD)
    with stack.sessions() as session:
        live = session.scalars(
            select(AdminSession).where(
                AdminSession.user_id == admin.user_id, AdminSession.revoked_at.is_(None)
            )
        ).all()
        assert live == []


def test_the_change_password_page_needs_a_full_session(stack: Stack, base_url: str) -> None:
    admin = make_admin(stack.sessions, stack.settings, "finance")
    with httpx.Client(base_url=base_url) as client:
        assert client.get("/admin/password").headers["location"] == "/admin/login"
        token = csrf_of(client.get("/admin/login").text)
        client.post(
            "/admin/login",
            data={"csrf_token": token, "email": admin.email, "password": admin.password},
        )
        # Password checked, code pending: not signed in yet.
        assert client.get("/admin/password").headers["location"] == "/admin/login"
        pending = change(client, token, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        assert pending.headers["location"] == "/admin/login"
    assert can_sign_in(base_url, admin, PASSWORD)


def _seed(page: str) -> str:
    match = re.search(r'<code id="totp-key">([A-Z2-7]+)</code>', page)
    assert match
    return match.group(1)


def _enrolling(base_url: str, admin: SeededAdmin) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base_url)
    token = csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login", data={"csrf_token": token, "email": admin.email, "password": PASSWORD}
    )
    assert response.headers["location"] == "/admin/enrol"
    return client, token


def test_enrolment_shows_the_same_seed_until_confirmed(stack: Stack, base_url: str) -> None:
    admin = make_admin(stack.sessions, stack.settings, "support", two_factor=False)
    first, _ = _enrolling(base_url, admin)
    client, token = _enrolling(base_url, admin)
    try:
        seed = _seed(client.get("/admin/enrol").text)
        assert _seed(client.get("/admin/enrol").text) == seed  # a reload keeps it
        # Another sign-in (another session) gets its own seed, and does not replace ours.
        theirs = _seed(first.get("/admin/enrol").text)
        assert theirs != seed
        assert _seed(client.get("/admin/enrol").text) == seed
        wrong = client.post("/admin/enrol", data={"csrf_token": token, "code": "000000"})
        assert wrong.status_code == 422
        assert _seed(wrong.text) == seed
        done = client.post(
            "/admin/enrol", data={"csrf_token": token, "code": pyotp.TOTP(seed).now()}
        )
        assert done.status_code == 200
        assert "recovery" in done.text.lower()
        assert client.get("/admin/").status_code == 200
    finally:
        first.close()
        client.close()
    # The confirmed seed is the one that signs in from now on.
    with httpx.Client(base_url=base_url) as again:
        token = csrf_of(again.get("/admin/login").text)
        again.post(
            "/admin/login", data={"csrf_token": token, "email": admin.email, "password": PASSWORD}
        )
        # The code step used in enrolment cannot be replayed: wait out to the next code.
        code = pyotp.TOTP(seed).at(int(time.time()) + 30)
        response = again.post("/admin/2fa", data={"csrf_token": token, "code": code})
        assert response.headers["location"] == "/admin"
