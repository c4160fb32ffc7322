"""Access: every role against every route, CSRF, session fixation, tokens, throttling, TOTP.

Over real HTTP (uvicorn on loopback) against a real database and the sandbox. The
routes come from the app itself and the expected outcome from docs/ACCESS.md, so a
new route is covered (or fails as undocumented) without touching this file. Every
attack is made so that it would succeed without the protection: forms carry
``confirm=yes`` and real targets, brute force uses the right secret after the lockout.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import func, select, text, update

from paydesk.auth import accounts, lockout, roles
from paydesk.db.models import AdminApiToken, AdminSession, AuditEntry
from paydesk.db.models.base import utcnow
from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.store import insert_events
from tests.reliability.conftest import Scale
from tests.reliability.support_access import (
    SESSION_COOKIE,
    SIGN_IN_NEEDS,
    AccessServer,
    Console,
    access_server,
    csrf_of,
    documented_routes,
    fill,
    new_console,
    route_pattern,
    served_api_routes,
    served_console_routes,
    sign_in,
)
from tests.support.admins import PASSWORD, SeededAdmin, make_admin, make_token
from tests.webhooks.support import event_dict, payment_intent

ANONYMOUS = "anonymous"
HOST = "127.0.0.1"  # the cookie domain of the loopback server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccessServer]:
    """One server for the matrix, CSRF, fixation and token checks (no throttling there)."""
    with access_server(tmp_path_factory.mktemp("access")) as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[AccessServer]:
    """A server of its own: throttling counts every failure from 127.0.0.1."""
    with access_server(tmp_path) as running:
        yield running


def _admin(server: AccessServer, role: str, **kwargs: Any) -> SeededAdmin:
    email = f"{role}-{secrets.token_hex(4)}@paydesk.test"
    two_factor = kwargs.pop("two_factor", role != "viewer")
    return make_admin(
        server.stack.sessions, server.stack.settings, role, email=email, two_factor=two_factor
    )


def _api(server: AccessServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    )


def _scalar(server: AccessServer, query: Any) -> Any:
    with server.stack.sessions() as session:
        return session.scalar(query)


def _audit_count(server: AccessServer) -> int:
    return int(_scalar(server, select(func.count()).select_from(AuditEntry)) or 0)


# --- the route matrix ------------------------------------------------------------


def test_documented_routes_are_exactly_the_served_routes(
    server: AccessServer, figures: dict[str, Any]
) -> None:
    api_doc, console_doc = documented_routes()
    api = served_api_routes(server.app)
    assert set(api) == set(api_doc), (
        f"undocumented: {sorted(set(api) - set(api_doc))}; "
        f"documented but not served: {sorted(set(api_doc) - set(api))}"
    )
    for key, declared in api.items():
        needed = api_doc[key]
        # The route declares the documented permission (and `read`, as every Admin route).
        assert declared == {"read", needed}, (key, declared, needed)
    console = served_console_routes(server.app)
    for method, path in console:
        pattern = route_pattern(path)
        assert any(m == method and pattern.match(p) for m, p in console_doc), (
            f"console route {method} {path} is not in docs/ACCESS.md"
        )
    for method, path in console_doc:
        assert any(m == method and route_pattern(p).match(path) for m, p in console), (
            f"docs/ACCESS.md lists {method} {path}, which the console does not serve"
        )
    for needs in {*api_doc.values(), *console_doc.values()} - SIGN_IN_NEEDS:
        assert needs in {str(p) for p in roles.Permission}, f"unknown permission {needs}"
    figures["routes"] = len(api) + len(console_doc)


def _expect(response: httpx.Response, allowed: bool, what: tuple[Any, ...]) -> None:
    if allowed:
        assert response.status_code not in (401, 403), (*what, response.text[:300])
        assert response.status_code < 500, (*what, response.status_code, response.text[:300])
    else:
        assert response.status_code == 403, (*what, response.status_code)
        assert "permission_denied" in response.text, what


def test_admin_api_every_role_every_route(server: AccessServer, figures: dict[str, Any]) -> None:
    api_doc, _ = documented_routes()
    checked = 0
    principals: dict[str, str | None] = {ANONYMOUS: None, "forged": "pdk_" + "x" * 43}
    for role in roles.ROLES:
        principals[role] = make_token(
            server.stack.sessions, server.stack.settings, _admin(server, role)
        )
    for who, token in principals.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as client:
            for (method, path), needs in sorted(api_doc.items()):
                body = {} if method in ("POST", "PUT", "PATCH") else None
                response = client.request(method, fill(path), json=body)
                checked += 1
                if who in (ANONYMOUS, "forged"):
                    assert response.status_code == 401, (who, method, path, response.status_code)
                    continue
                allowed = roles.can(who, roles.Permission(needs), live=False)
                _expect(response, allowed, (who, method, path))
    figures["requests"] = checked


def test_console_every_role_every_route(server: AccessServer, figures: dict[str, Any]) -> None:
    _, console_doc = documented_routes()
    guarded = {key: needs for key, needs in console_doc.items() if needs not in SIGN_IN_NEEDS}
    checked = 0
    clients: dict[str, Console] = {ANONYMOUS: new_console(server.base_url)}
    # A half-finished sign-in (password right, code not given) reaches no page.
    clients["pending"] = sign_in(server.base_url, _admin(server, "admin"), second_factor=False)
    for role in roles.ROLES:
        clients[role] = sign_in(server.base_url, _admin(server, role))
    try:
        for who, console in clients.items():
            for (method, path), needs in sorted(guarded.items()):
                url = fill(path)
                response = console.client.get(url) if method == "GET" else console.post(url)
                if response.status_code == 307 and response.headers["location"].endswith(url + "/"):
                    response = console.client.get(url + "/")  # the mount's own slash redirect
                checked += 1
                if who in (ANONYMOUS, "pending"):
                    assert response.status_code == 303, (who, method, path, response.status_code)
                    assert response.headers["location"] == "/admin/login", (who, path)
                    continue
                allowed = roles.can(who, roles.Permission(needs), live=False)
                _expect(response, allowed, (who, method, path))
        # Action routes dispatch on their last segment: anything undocumented is a 404.
        admin = clients["admin"]
        for path in ("/admin/subscriptions/x_missing/pause", "/admin/admins/999999/promote"):
            assert admin.post(path, {"confirm": "yes"}).status_code == 404, path
            checked += 1
    finally:
        for console in clients.values():
            console.client.close()
    figures["requests"] = checked


# --- CSRF ------------------------------------------------------------------------


def _fingerprint(server: AccessServer) -> tuple[Any, ...]:
    """What a console form could change: audit entries, admins, tokens, money, events."""
    queries = [
        "SELECT count(*) FROM audit_log",
        "SELECT id, email, role, disabled_at, totp_enabled, failed_logins FROM admin_users"
        " ORDER BY id",
        "SELECT id, role, revoked_at FROM admin_api_tokens ORDER BY id",
        "SELECT count(*) FROM admin_sessions WHERE stage = 'full' AND revoked_at IS NULL",
        "SELECT stripe_id, amount, status FROM refunds ORDER BY stripe_id",
        "SELECT stripe_id, status, price_id, cancel_at_period_end FROM subscriptions"
        " ORDER BY stripe_id",
        "SELECT event_id, status, attempts FROM stripe_events ORDER BY event_id",
    ]
    with server.stack.engine.connect() as connection:
        return tuple(tuple(map(tuple, connection.execute(text(q)))) for q in queries)


def _targets(server: AccessServer) -> dict[str, str]:
    """A paid payment, an active subscription, a stored event, a token and an admin to act on."""
    token = make_token(server.stack.sessions, server.stack.settings, _admin(server, "admin"))
    with _api(server, token) as api:
        customer = api.post("/api/admin/customers", json={"user_id": "csrf-victim"})
        assert customer.status_code < 300, customer.text
        cus = customer.json()["id"]
        paid = api.post(
            "/api/admin/payments",
            json={
                "customer": cus,
                "amount": 5000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
            },
        )
        assert paid.status_code == 200, paid.text
        assert paid.json()["payment"]["status"] == "succeeded", paid.text
        authorised = [
            api.post(
                "/api/admin/payments",
                json={
                    "customer": cus,
                    "amount": 700,
                    "currency": "usd",
                    "payment_method": "pm_card_visa",
                    "capture_method": "manual",
                },
            )
            for _ in range(2)
        ]
        for made in authorised:
            assert made.json()["payment"]["status"] == "requires_capture", made.text
        disputed = api.post(
            "/api/admin/payments",
            json={
                "customer": cus,
                "amount": 900,
                "currency": "usd",
                "payment_method": "pm_card_createDispute",
            },
        )
        assert disputed.status_code == 200, disputed.text
        intent = disputed.json()["payment"]["id"]
        [dispute] = server.stack.sdk.v1.disputes.list({"payment_intent": intent}).data
        sub = api.post(
            "/api/admin/subscriptions",
            json={"customer": cus, "tier": "premium", "payment_method": "pm_card_visa"},
        )
        assert sub.status_code < 300, sub.text
        payable = api.post(
            "/api/admin/payments",
            json={"customer": cus, "amount": 800, "currency": "usd", "confirm": False},
        )
        assert payable.json()["payment"]["status"] == "requires_payment_method", payable.text
        unsubscribed = api.post("/api/admin/customers", json={"user_id": "csrf-unsubscribed"})
        assert unsubscribed.status_code < 300, unsubscribed.text
        created = api.post("/api/admin/tokens", json={"name": "victim", "role": "viewer"})
        assert created.status_code < 300, created.text
    event = event_dict("payment_intent.succeeded", payment_intent())
    with server.stack.engine.begin() as connection:
        insert_events(connection, [event_from_dict(event).row()])
    victim = _admin(server, "support")
    return {
        "payment_id": paid.json()["payment"]["id"],
        "capturable_id": authorised[0].json()["payment"]["id"],
        "payable_id": payable.json()["payment"]["id"],
        "customer_id": cus,
        "unsubscribed_id": unsubscribed.json()["id"],
        "cancelable_id": authorised[1].json()["payment"]["id"],
        "dispute_id": str(dispute.id),
        "subscription_id": sub.json()["subscription"]["id"],
        "event_id": event["id"],
        "token_id": str(created.json()["id"]),
        "admin_id": str(victim.user_id),
    }


# The fields that make each console form act at once (confirmation included).
FORM_FIELDS: dict[str, dict[str, str]] = {
    "/admin/payments/{payment_id}/refund": {"amount": "1.00", "confirm": "yes", "form_key": "k1"},
    "/admin/payments/{payment_id}/refresh": {},
    "/admin/payments/{payment_id}/capture": {"confirm": "yes"},
    "/admin/payments/{payment_id}/cancel": {"confirm": "yes"},
    "/admin/payments/{payment_id}/pay-link": {},
    "/admin/customers/{customer_id}/payments": {
        "amount": "5.00",
        "currency": "usd",
        "confirm": "yes",
        "form_key": "k3",
    },
    "/admin/customers/{customer_id}/subscriptions": {
        "tier": "free",
        "confirm": "yes",
        "form_key": "k4",
    },
    "/admin/disputes/{dispute_id}/evidence": {"product_description": "csrf", "submit": "draft"},
    "/admin/disputes/{dispute_id}/close": {"confirm": "yes"},
    "/admin/subscriptions/{subscription_id}/tier": {
        "tier": "enterprise",
        "confirm": "yes",
        "form_key": "k2",
    },
    "/admin/subscriptions/{subscription_id}/cancel": {"when": "period_end", "confirm": "yes"},
    "/admin/subscriptions/{subscription_id}/resume": {"confirm": "yes"},
    "/admin/events/{event_id}/replay": {"confirm": "yes"},
    "/admin/tokens": {"name": "csrf", "role": "viewer", "days": "1"},
    "/admin/tokens/{token_id}/revoke": {"confirm": "yes"},
    "/admin/admins": {"email": "csrf-new@paydesk.test", "role": "viewer"},
    "/admin/admins/{admin_id}/disable": {"confirm": "yes"},
    "/admin/admins/{admin_id}/reset-2fa": {"confirm": "yes"},
    "/admin/admins/{admin_id}/role": {"role": "viewer", "confirm": "yes"},
    # The signed-in admin's own password (tests.support.admins.PASSWORD); the change
    # keeps this session, so sign-out can still come after it.
    "/admin/password": {
        "current_password": PASSWORD,
        "new_password": "csrf checked new password",
        "new_password_repeat": "csrf checked new password",
    },
    "/admin/logout": {},
}
# Order matters for the genuine submissions: resume needs the cancellation first,
# the victim admin is changed before being disabled, the password is changed once
# (its current value is the seeded one), sign-out comes last.
# Which target a form acts on when its route's placeholder names another object:
# capture and cancel need authorised (manual-capture) payments.
FORM_TARGETS: dict[str, dict[str, str]] = {
    "/admin/payments/{payment_id}/capture": {"payment_id": "capturable_id"},
    "/admin/payments/{payment_id}/cancel": {"payment_id": "cancelable_id"},
    "/admin/payments/{payment_id}/pay-link": {"payment_id": "payable_id"},
    "/admin/customers/{customer_id}/subscriptions": {"customer_id": "unsubscribed_id"},
}
FORM_ORDER = [
    "/admin/payments/{payment_id}/refund",
    "/admin/payments/{payment_id}/refresh",
    "/admin/payments/{payment_id}/capture",
    "/admin/payments/{payment_id}/cancel",
    "/admin/payments/{payment_id}/pay-link",
    "/admin/customers/{customer_id}/payments",
    "/admin/customers/{customer_id}/subscriptions",
    "/admin/disputes/{dispute_id}/evidence",
    "/admin/disputes/{dispute_id}/close",
    "/admin/subscriptions/{subscription_id}/tier",
    "/admin/subscriptions/{subscription_id}/cancel",
    "/admin/subscriptions/{subscription_id}/resume",
    "/admin/events/{event_id}/replay",
    "/admin/tokens",
    "/admin/tokens/{token_id}/revoke",
    "/admin/admins",
    "/admin/admins/{admin_id}/reset-2fa",
    "/admin/admins/{admin_id}/role",
    "/admin/admins/{admin_id}/disable",
    "/admin/password",
    "/admin/logout",
]


def test_every_console_form_refuses_a_missing_or_wrong_csrf_token(
    server: AccessServer, figures: dict[str, Any]
) -> None:
    _, console_doc = documented_routes()
    forms = sorted(p for (m, p), needs in console_doc.items() if m == "POST" and needs == "anyone")
    forms += sorted(
        p for (m, p), needs in console_doc.items() if m == "POST" and needs not in SIGN_IN_NEEDS
    )
    forms.remove("/admin/login")  # the sign-in forms have their own checks below
    assert sorted(forms) == sorted(FORM_FIELDS), "a console form without CSRF fields here"
    targets = _targets(server)
    admin = sign_in(server.base_url, _admin(server, "admin"))
    other = new_console(server.base_url)  # a valid token, but for another browser's cookie
    refused = 0
    try:
        for template in FORM_ORDER:
            chosen = {k: targets[v] for k, v in FORM_TARGETS.get(template, {}).items()}
            url = template.format(**{**targets, **chosen})
            fields = FORM_FIELDS[template]
            before = _fingerprint(server)
            attempts = {
                "missing": fields,
                "wrong": {**fields, "csrf_token": secrets.token_urlsafe(32)},
                "other browser's": {**fields, "csrf_token": other.csrf},
                "empty": {**fields, "csrf_token": ""},
            }
            for kind, data in attempts.items():
                response = admin.client.post(url, data=data)
                assert response.status_code == 403, (template, kind, response.status_code)
                assert "csrf_failed" in response.text, (template, kind)
                refused += 1
            # A valid token without the cookie it belongs to is refused too.
            jar = admin.client.cookies
            cookie = jar.get("paydesk_csrf", domain=HOST, path="/admin")
            assert cookie
            jar.delete("paydesk_csrf", domain=HOST, path="/admin")
            response = admin.client.post(url, data={**fields, "csrf_token": admin.csrf})
            jar.set("paydesk_csrf", cookie, domain=HOST, path="/admin")
            assert response.status_code == 403, (template, "no cookie", response.status_code)
            refused += 1
            assert _fingerprint(server) == before, f"{template}: a refused form changed something"
            # The same form with its token goes through: the refusals above were CSRF's doing.
            response = admin.post(url, fields)
            assert response.status_code in (200, 303), (template, response.text[:500])
            assert _fingerprint(server) != before, f"{template}: the genuine form changed nothing"
        assert not admin.signed_in()  # the last form was sign-out
    finally:
        admin.client.close()
        other.client.close()
    refused += _sign_in_forms_refuse_bad_csrf(server)
    figures["csrf_refusals"] = refused


def _sign_in_forms_refuse_bad_csrf(server: AccessServer) -> int:
    refused = 0
    viewer = _admin(server, "viewer")
    finance = _admin(server, "finance")
    enrolling = _admin(server, "support", two_factor=False)
    audit_before = _audit_count(server)
    console = new_console(server.base_url)
    # Right password, no token: no session, nothing audited, no failure counted.
    response = console.client.post(
        "/admin/login", data={"email": viewer.email, "password": viewer.password}
    )
    assert response.status_code == 403
    assert console.session_id() is None
    response = console.client.post(
        "/admin/login",
        data={"email": viewer.email, "password": viewer.password, "csrf_token": "x" * 43},
    )
    assert response.status_code == 403
    assert console.session_id() is None
    assert _audit_count(server) == audit_before
    refused += 2
    # Code step and enrolment step: the right code without a token does not finish sign-in.
    for admin, path in ((finance, "/admin/2fa"), (enrolling, "/admin/enrol")):
        pending = sign_in(server.base_url, admin, second_factor=False)
        if path == "/admin/enrol":
            seed_page = pending.client.get("/admin/enrol").text
            seed = seed_page.split('id="totp-key">', 1)[1].split("<", 1)[0]
            code = pyotp.TOTP(seed).now()
        else:
            code = admin.code()
        response = pending.client.post(path, data={"code": code})
        assert response.status_code == 403, (path, response.status_code)
        assert not pending.signed_in(), path
        refused += 1
        pending.client.close()
    console.client.close()
    return refused


# --- sessions --------------------------------------------------------------------


def test_session_fixation_logout_and_expiry(server: AccessServer, figures: dict[str, Any]) -> None:
    admin = _admin(server, "finance")
    console = new_console(server.base_url)
    planted = secrets.token_urlsafe(32)
    console.client.cookies.set(SESSION_COOKIE, planted, domain=HOST, path="/admin")
    assert (
        console.post("/admin/login", {"email": admin.email, "password": admin.password}).status_code
        == 303
    )
    pending_id = console.session_id()
    assert pending_id
    assert pending_id != planted, "the planted session id survived sign-in"
    assert console.post("/admin/2fa", {"code": admin.code()}).status_code == 303
    full_id = console.session_id()
    assert full_id
    assert full_id not in (planted, pending_id), "no new id when sign-in completed"
    assert console.signed_in()
    # Signed in, forms carry a token bound to the session (the sign-in page's is not).
    console.csrf = csrf_of(console.client.get("/admin/").text)

    def works(session_id: str) -> bool:
        with httpx.Client(base_url=server.base_url, timeout=60) as other:
            other.cookies.set(SESSION_COOKIE, session_id, domain=HOST, path="/admin")
            return other.get("/admin/").status_code == 200

    assert not works(planted)
    assert not works(pending_id)
    assert works(full_id)
    # A pending id known to an attacker cannot finish someone's sign-in either.
    with httpx.Client(base_url=server.base_url, timeout=60) as attacker:
        attacker.cookies.set(SESSION_COOKIE, pending_id, domain=HOST, path="/admin")
        token = csrf_of(attacker.get("/admin/login").text)
        response = attacker.post("/admin/2fa", data={"csrf_token": token, "code": admin.code()})
        assert response.status_code == 303
        assert response.headers["location"] == "/admin/login"
    # Sign-out ends the session on the server: a copied cookie no longer works.
    assert console.post("/admin/logout").status_code == 303
    assert not works(full_id), "the session outlived sign-out"
    with server.stack.sessions() as session:
        rows = session.scalars(select(AdminSession).where(AdminSession.user_id == admin.user_id))
        assert all(row.revoked_at is not None for row in rows)
    # Idle and absolute timeouts, on the server's clock (moved back in the database).
    checks = 0
    idle = timedelta(minutes=server.stack.settings.admin_session_idle_minutes, seconds=1)
    for column, shift in (("last_seen_at", idle), ("expires_at", timedelta(hours=13))):
        # A fresh admin each time: a TOTP code is good once per time step.
        other_admin = _admin(server, "finance")
        again = sign_in(server.base_url, other_admin)
        assert again.signed_in()
        with server.stack.sessions() as session:
            session.execute(
                update(AdminSession)
                .where(
                    AdminSession.user_id == other_admin.user_id,
                    AdminSession.revoked_at.is_(None),
                )
                .values({column: utcnow() - shift})
            )
            session.commit()
        assert not again.signed_in(), f"a session past its {column} still works"
        again.client.close()
        checks += 1
    console.client.close()
    figures["session_checks"] = 4 + checks


# --- API tokens ------------------------------------------------------------------


def test_expired_revoked_and_orphaned_api_tokens_are_refused(
    server: AccessServer, figures: dict[str, Any]
) -> None:
    owner = _admin(server, "admin")
    master = make_token(server.stack.sessions, server.stack.settings, owner)
    refused = 0

    def status(token: str) -> int:
        with _api(server, token) as api:
            return api.get("/api/admin/payments").status_code

    def new_token(api: httpx.Client, role: str = "viewer") -> tuple[int, str]:
        made = api.post("/api/admin/tokens", json={"name": "t", "role": role, "days": 1})
        assert made.status_code < 300, made.text
        return int(made.json()["id"]), str(made.json()["token"])

    with _api(server, master) as api:
        # Expired: the server's clock passes expires_at.
        token_id, token = new_token(api)
        assert status(token) == 200
        with server.stack.sessions() as session:
            session.execute(
                update(AdminApiToken)
                .where(AdminApiToken.id == token_id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            session.commit()
        assert status(token) == 401
        # Revoked through the API.
        token_id, token = new_token(api)
        assert status(token) == 200
        assert api.delete(f"/api/admin/tokens/{token_id}").status_code < 300
        assert status(token) == 401
        # Revoked in the console.
        token_id, token = new_token(api)
        console = sign_in(server.base_url, owner)
        response = console.post(f"/admin/tokens/{token_id}/revoke", {"confirm": "yes"})
        assert response.status_code == 303
        assert status(token) == 401
        # Owner disabled (API), owner's role changed (console), owner's 2FA reset (console).
        victims = []
        for change in ("disable", "role", "reset-2fa"):
            victim = _admin(server, "finance")
            victim_token = make_token(server.stack.sessions, server.stack.settings, victim)
            assert status(victim_token) == 200
            if change == "disable":
                assert api.post(f"/api/admin/admins/{victim.user_id}/disable").status_code < 300
            else:
                data = {"confirm": "yes", "role": "viewer"}
                response = console.post(f"/admin/admins/{victim.user_id}/{change}", data)
                assert response.status_code == 303, response.text[:300]
            victims.append(victim_token)
            assert status(victim_token) == 401, change
        console.client.close()
        # Tampered, truncated, foreign-prefixed and misplaced tokens.
        forged = [token[:-1] + ("A" if token[-1] != "A" else "B"), token[:20], "sk_" + token[4:]]
        for bad in forged:
            assert status(bad) == 401
        for header in (f"Basic {master}", "Bearer", f"Token {master}", master):
            response = httpx.get(
                f"{server.base_url}/api/admin/payments", headers={"Authorization": header}
            )
            assert response.status_code == 401, header
        assert status(master) == 200  # the owner's own token still works throughout
        refused = 3 + len(victims) + len(forged) + 4
    figures["token_refusals"] = refused


# --- brute force -----------------------------------------------------------------


def _lift_lockout(server: AccessServer, admin: SeededAdmin) -> None:
    # What an operator's `paydesk admin unlock` does (the audit log is append-only, so
    # the wait cannot be moved back on the server's clock).
    with server.stack.sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        lockout.unlock(session, server.stack.settings, user, actor="test")
        session.commit()


def test_login_throttling_and_lockout(
    fresh_server: AccessServer, scale: Scale, figures: dict[str, Any]
) -> None:
    server = fresh_server
    limit = server.stack.settings.admin_max_failed_logins
    admin = _admin(server, "viewer")
    console = new_console(server.base_url)
    wrong = {"email": admin.email, "password": "not the password!"}
    right = {"email": admin.email, "password": admin.password}
    for _ in range(limit):
        assert console.post("/admin/login", wrong).status_code == 401
    # Backing off: from this address the right password is refused too (429 with the
    # wait, the first one 2^5 s), and gives no session.
    for _ in range(scale.pick(2, 5)):
        response = console.post("/admin/login", right)
        assert response.status_code == 429
        assert 0 < int(response.headers["retry-after"]) <= 2**lockout.FIRST_EXPONENT
        assert console.session_id() is None
    assert not console.signed_in()
    _lift_lockout(server, admin)
    assert console.post("/admin/login", right).status_code == 303
    assert console.signed_in()
    console.client.close()
    # Per address: after failures against ADDRESS_FAILURE_LIMIT different accounts from
    # 127.0.0.1, everything is 429, even the right password of an account that never failed.
    bystander = _admin(server, "viewer")
    attacker = new_console(server.base_url)
    # The throttle counts the different accounts failed against from the address.
    failures = _scalar(
        server,
        select(func.count(func.distinct(AuditEntry.target)))
        .select_from(AuditEntry)
        .where(AuditEntry.action == "auth.sign_in", AuditEntry.outcome == "failure"),
    )
    guesses = 0
    for n in range(accounts.ADDRESS_FAILURE_LIMIT - int(failures)):
        data = {"email": f"guess{n}@paydesk.test", "password": "guessing-password"}
        assert attacker.post("/admin/login", data).status_code == 401
        guesses += 1
    response = attacker.post(
        "/admin/login", {"email": bystander.email, "password": bystander.password}
    )
    assert response.status_code == 429
    assert attacker.session_id() is None
    attacker.client.close()
    figures["sign_in_attempts"] = limit + scale.pick(2, 5) + 1 + guesses + 1


def test_totp_brute_force_is_locked_out(
    fresh_server: AccessServer, scale: Scale, figures: dict[str, Any]
) -> None:
    server = fresh_server
    limit = server.stack.settings.admin_max_failed_logins
    admin = _admin(server, "admin")
    assert admin.seed is not None
    right = {"email": admin.email, "password": admin.password}
    attempts = 0

    def wrong_code() -> str:
        current = {pyotp.TOTP(admin.seed or "").at(utcnow().timestamp() + d) for d in (-30, 0, 30)}
        while True:
            guess = f"{secrets.randbelow(10**6):06d}"
            if guess not in current:
                return guess

    # 1. Guessing codes: the limit-th wrong code makes the address wait and ends the
    # pending sign-in; the right code then fails too.
    console = new_console(server.base_url)
    assert console.post("/admin/login", right).status_code == 303
    for _ in range(limit):
        assert console.post("/admin/2fa", {"code": wrong_code()}).status_code == 401
        attempts += 1
    response = console.post("/admin/2fa", {"code": admin.code()})
    assert response.status_code in (303, 401)
    assert not console.signed_in()
    # More guesses at full scale: none is even looked at.
    for _ in range(scale.pick(3, 200)):
        response = console.post("/admin/2fa", {"code": wrong_code()})
        assert response.status_code in (303, 401, 429)
        attempts += 1
    assert not console.signed_in()
    assert console.post("/admin/login", right).status_code == 429  # backing off
    console.client.close()

    # 2. Interleaving: codes through a pending session, then a wrong password from the
    # same address reaches the limit. The pending session must not keep guessing.
    _lift_lockout(server, admin)
    guesser = new_console(server.base_url)
    assert guesser.post("/admin/login", right).status_code == 303
    for _ in range(limit - 1):
        assert guesser.post("/admin/2fa", {"code": wrong_code()}).status_code == 401
        attempts += 1
    other = new_console(server.base_url)
    assert other.post("/admin/login", {**right, "password": "wrong-password!"}).status_code == 401
    response = guesser.post("/admin/2fa", {"code": admin.code()})
    assert response.status_code in (303, 401)
    assert not guesser.signed_in()
    other.client.close()
    guesser.client.close()

    # 3. A code is good once: after a real sign-in, the same code does not sign in again.
    _lift_lockout(server, admin)
    first = new_console(server.base_url)
    assert first.post("/admin/login", right).status_code == 303
    code = admin.code()
    assert first.post("/admin/2fa", {"code": code}).status_code == 303
    assert first.signed_in()
    second = new_console(server.base_url)
    assert second.post("/admin/login", right).status_code == 303
    assert second.post("/admin/2fa", {"code": code}).status_code == 401
    assert not second.signed_in()
    first.client.close()
    second.client.close()
    figures["code_guesses"] = attempts
    figures["accepted_after_lockout"] = 0
