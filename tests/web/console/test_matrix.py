"""Every Admin API route and every console action, against every role.

The expected answer comes from the one permission matrix: a role that lacks a
route's permission gets 403, a role that holds it gets anything but 401/403 (the
placeholder ids then give 404 or 422). A route without a declared permission
fails the test, so new routes cannot slip through unguarded.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from fastapi.routing import APIRoute

from paydesk.auth import roles
from paydesk.auth.roles import Permission
from paydesk.web import create_app
from tests.support.admins import admin_token
from tests.support.stack import Stack

Console = Callable[[str], tuple[httpx.Client, str]]

# Console actions: method, path, the permission that guards them.
CONSOLE_ACTIONS: list[tuple[str, str, Permission]] = [
    ("GET", "/admin/", Permission.READ),
    ("GET", "/admin/payments", Permission.READ),
    ("GET", "/admin/payments/pi_missing", Permission.READ),
    ("GET", "/admin/subscriptions/sub_missing", Permission.READ),
    ("GET", "/admin/subscriptions", Permission.READ),
    ("GET", "/admin/customers", Permission.READ),
    ("GET", "/admin/disputes", Permission.READ),
    ("GET", "/admin/events", Permission.READ),
    ("GET", "/admin/alerts", Permission.READ),
    ("GET", "/admin/access", Permission.READ),
    ("GET", "/admin/audit", Permission.AUDIT_READ),
    ("GET", "/admin/audit.csv", Permission.AUDIT_READ),
    ("GET", "/admin/settings", Permission.SETTINGS_READ),
    ("GET", "/admin/password", Permission.READ),
    ("POST", "/admin/password", Permission.READ),
    ("POST", "/admin/payments/pi_missing/refund", Permission.REFUNDS_CREATE),
    ("POST", "/admin/subscriptions/sub_missing/tier", Permission.SUBSCRIPTIONS_CHANGE_TIER),
    ("POST", "/admin/subscriptions/sub_missing/cancel", Permission.SUBSCRIPTIONS_CANCEL),
    ("POST", "/admin/subscriptions/sub_missing/resume", Permission.SUBSCRIPTIONS_RESUME),
    ("POST", "/admin/events/evt_missing/replay", Permission.EVENTS_REPLAY),
    ("POST", "/admin/tokens", Permission.TOKENS_OWN),
    ("POST", "/admin/tokens/999999/revoke", Permission.TOKENS_OWN),
    ("POST", "/admin/admins", Permission.ADMINS_MANAGE),
    ("POST", "/admin/admins/999999/disable", Permission.ADMINS_MANAGE),
    ("POST", "/admin/admins/999999/reset-2fa", Permission.ADMINS_MANAGE),
    ("POST", "/admin/admins/999999/role", Permission.ADMINS_MANAGE),
    ("GET", "/admin/payments.csv", Permission.READ),
    ("GET", "/admin/refunds", Permission.READ),
    ("GET", "/admin/refunds.csv", Permission.READ),
    ("GET", "/admin/subscriptions.csv", Permission.READ),
    ("GET", "/admin/customers.csv", Permission.READ),
    ("GET", "/admin/customers/cus_missing", Permission.READ),
    ("GET", "/admin/disputes.csv", Permission.READ),
    ("GET", "/admin/disputes/dp_missing", Permission.READ),
    ("POST", "/admin/disputes/dp_missing/evidence", Permission.DISPUTES_MANAGE),
    ("POST", "/admin/disputes/dp_missing/close", Permission.DISPUTES_MANAGE),
    ("GET", "/admin/events.csv", Permission.READ),
    ("GET", "/admin/events/evt_missing", Permission.READ),
    ("POST", "/admin/payments/pi_missing/capture", Permission.PAYMENTS_WRITE),
    ("POST", "/admin/payments/pi_missing/cancel", Permission.PAYMENTS_WRITE),
    ("POST", "/admin/payments/pi_missing/refresh", Permission.PAYMENTS_REFRESH),
    ("POST", "/admin/payments/pi_missing/pay-link", Permission.PAYMENTS_REFRESH),
    ("POST", "/admin/customers/cus_missing/payments", Permission.PAYMENTS_WRITE),
    ("POST", "/admin/customers/cus_missing/subscriptions", Permission.SUBSCRIPTIONS_CREATE),
]
# Reached by everyone who is signed in, by design.
SIGN_IN_ROUTES = {"/login", "/2fa", "/enrol", "/logout"}


def _permissions(route: APIRoute) -> set[Permission]:
    found = set()
    for depends in route.dependencies:
        permission = getattr(depends.dependency, "permission", None)
        if permission is not None:
            found.add(permission)
    return found


def _admin_routes(stack: Stack) -> list[tuple[str, str, set[Permission]]]:
    app = create_app(stack.settings, engine=stack.engine)
    routes = []
    for item in app.router.routes:
        # FastAPI keeps included routers as a branch holding the original router.
        original = getattr(item, "original_router", None)
        for route in original.routes if original is not None else [item]:
            if isinstance(route, APIRoute) and route.path.startswith("/api/admin"):
                for method in sorted(route.methods):
                    routes.append((method, route.path, _permissions(route)))
    # Exactly the Admin API the app serves (its OpenAPI document) is checked here.
    served = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/api/admin")
        for method in item
    }
    assert served == {(method, path) for method, path, _ in routes}
    return routes


def _fill(path: str) -> str:
    return re.sub(
        r"\{(\w+)\}",
        lambda m: "999999" if m.group(1) in ("token_id", "admin_id") else "x_missing",
        path,
    )


def test_every_admin_api_route_declares_a_permission(stack: Stack) -> None:
    routes = _admin_routes(stack)
    assert len(routes) >= 25
    unguarded = [(method, path) for method, path, perms in routes if not perms]
    assert unguarded == []


@pytest.mark.parametrize("role", roles.ROLES)
def test_admin_api_matrix(stack: Stack, api_base: str, role: str) -> None:
    token = admin_token(stack.sessions, stack.settings, role)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_base, timeout=30) as client:
        for method, path, permissions in _admin_routes(stack):
            url = _fill(path)
            allowed = all(roles.can(role, p, live=False) for p in permissions)
            body = {} if method in ("POST", "PUT", "PATCH") else None
            anonymous = client.request(method, url, json=body)
            assert anonymous.status_code == 401, (method, path)
            response = client.request(method, url, json=body, headers=headers)
            if allowed:
                assert response.status_code not in (401, 403), (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["error"]["code"] == "permission_denied"


def test_console_matrix_covers_every_console_action(stack: Stack) -> None:
    from paydesk.web.console.views import build_console

    app = create_app(stack.settings, engine=stack.engine)
    console = build_console(app)
    declared = {re.sub(r"/[a-z]+_missing|/999999", "/{}", p) for _, p, _ in CONSOLE_ACTIONS}
    for route in console.routes:
        if not isinstance(route, APIRoute) or route.path in SIGN_IN_ROUTES | {"", "/"}:
            continue
        generic = re.sub(r"\{\w+\}", "{}", "/admin" + route.path)
        if "{action}" in route.path:
            continue  # the action-dispatching routes are listed per action above
        assert generic in declared, f"console route {route.path} has no matrix entry"


@pytest.mark.parametrize("role", roles.ROLES)
def test_console_matrix(console_as: Console, role: str) -> None:
    client, token = console_as(role)
    for method, path, permission in CONSOLE_ACTIONS:
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": token})
        if roles.can(role, permission, live=False):
            assert response.status_code not in (401, 403), (role, path, response.text[:500])
            assert response.status_code < 500, (role, path, response.text[:500])
        else:
            assert response.status_code == 403, (role, path, response.status_code)
            assert "permission_denied" in response.text


def test_live_mode_refunds_and_cancellations_need_finance_on_the_api(
    stack: Stack,
) -> None:
    # The live-mode rule lives in the same matrix the routes use.
    for permission in (Permission.REFUNDS_CREATE, Permission.SUBSCRIPTIONS_CANCEL):
        assert roles.allowed_roles(permission, live=True) == {"finance", "admin"}
    assert any(Permission.REFUNDS_CREATE in perms for _, path, perms in _admin_routes(stack))
