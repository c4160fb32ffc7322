"""CSRF tokens bound to the console session (issue 14, finding 11).

Double submit alone accepts any (CSRF cookie, token) pair the server ever issued:
an attacker who plants their own CSRF cookie in a victim's browser (a sibling
subdomain, plain HTTP on the way) could then submit their own token. Bound to the
session, a token from another session is refused.
"""

from __future__ import annotations

import httpx
import pytest

from paydesk.auth import sessions as admin_sessions
from tests.support.admins import make_admin
from tests.support.stack import Stack
from tests.web.console.conftest import csrf_of, sign_in

pytestmark = pytest.mark.postgres


def _signed_in(client: httpx.Client) -> bool:
    return client.get("/admin/").status_code == 200


def _log_out(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/admin/logout", data={"csrf_token": token})


def test_a_token_of_another_session_is_refused(stack: Stack, base_url: str) -> None:
    victim_admin = make_admin(stack.sessions, stack.settings, "admin", email="victim@x.test")
    attacker_admin = make_admin(stack.sessions, stack.settings, "viewer", email="evil@x.test")
    victim, victims_token = sign_in(base_url, victim_admin)
    attacker, attackers_token = sign_in(base_url, attacker_admin)
    attackers_cookie = attacker.cookies.get(admin_sessions.CSRF_COOKIE, path="/admin")
    assert attackers_cookie
    # The attacker's CSRF cookie planted in the victim's browser, with their token.
    victim.cookies.set(admin_sessions.CSRF_COOKIE, attackers_cookie, path="/admin")
    refused = _log_out(victim, attackers_token)
    assert refused.status_code == 403
    assert "did not come from this console" in refused.text
    assert _signed_in(victim)
    # The sign-in page's token (same cookie, no session yet) no longer works either.
    login_token = csrf_of(attacker.get("/admin/login").text)
    assert _log_out(attacker, login_token).status_code == 403
    assert _signed_in(attacker)
    # A genuine token, with its own cookie and session, is accepted.
    fresh_admin = make_admin(stack.sessions, stack.settings, "support", email="s@x.test")
    fresh, fresh_token = sign_in(base_url, fresh_admin)
    previous_cookie = fresh.cookies.get(admin_sessions.CSRF_COOKIE, path="/admin") or ""
    assert _log_out(fresh, fresh_token).status_code == 303
    assert not _signed_in(fresh)
    # A token of the browser's previous session is refused in the next one (each
    # sign-in below is another admin: a TOTP step signs in once).
    next_admin = make_admin(stack.sessions, stack.settings, "finance", email="f@x.test")
    again, _ = sign_in(base_url, next_admin)
    again.cookies.set(admin_sessions.CSRF_COOKIE, previous_cookie, path="/admin")
    assert _log_out(again, fresh_token).status_code == 403
    assert _signed_in(again)
    assert _log_out(victim, victims_token).status_code == 403  # the planted cookie
    for client in (victim, attacker, fresh, again):
        client.close()
