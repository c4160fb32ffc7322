"""Helpers of the access area: the documented route tables, the served routes, signed-in clients.

The expected outcome of every route comes from docs/ACCESS.md (its two route
tables); which routes exist comes from the app itself (the Admin API's OpenAPI
document and the console's router), so a new route that is not documented fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount

from paydesk.db.migrate import upgrade_to_head
from paydesk.web import create_app
from tests.support.admins import SeededAdmin
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack, running_stack

DOC = Path(__file__).resolve().parents[2] / "docs" / "ACCESS.md"
_ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \| `([^`]+)` \|$", re.M)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SESSION_COOKIE = "paydesk_admin_session"
CSRF_COOKIE = "paydesk_csrf"
# Needs of the console's sign-in forms (no permission: they are how one gets one).
SIGN_IN_NEEDS = {"anyone", "password checked"}


def documented_routes() -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    """``(method, path) -> needs`` of the Admin API table and of the console table."""
    text = DOC.read_text()
    api_part = text.split("### Admin API", 1)[1].split("### Console", 1)[0]
    console_part = text.split("### Console", 1)[1].split("\n## ", 1)[0]

    def rows(part: str) -> dict[tuple[str, str], str]:
        return {(m, p): needs for m, p, needs in _ROW.findall(part)}

    return rows(api_part), rows(console_part)


def served_api_routes(app: FastAPI) -> dict[tuple[str, str], set[str]]:
    """Every Admin API operation the app serves, with the permissions its route declares."""
    routes: dict[tuple[str, str], set[str]] = {}
    for item in app.router.routes:
        original = getattr(item, "original_router", None)
        for route in original.routes if original is not None else [item]:
            if isinstance(route, APIRoute) and route.path.startswith("/api/admin"):
                declared = {
                    str(permission)
                    for depends in route.dependencies
                    if (permission := getattr(depends.dependency, "permission", None)) is not None
                }
                for method in route.methods:
                    routes[(method, route.path)] = declared
    served = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/admin")
        for method in operations
    }
    assert served == set(routes), "the OpenAPI document and the router disagree"
    return routes


def served_console_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every page and form of the console, from its router (static files aside)."""
    mounts = [r for r in app.router.routes if isinstance(r, Mount) and r.path == "/admin"]
    assert len(mounts) == 1, "the console is mounted at /admin"
    console = mounts[0].app
    assert isinstance(console, FastAPI)
    found = []
    for route in console.routes:
        if isinstance(route, APIRoute):
            found.extend((method, "/admin" + route.path) for method in sorted(route.methods))
    return found


def route_pattern(path: str) -> re.Pattern[str]:
    """A served path template as a regex over documented paths (``{action}`` = any segment)."""
    escaped = re.escape(path)
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", r"(\\{\\w+\\}|[^/]+)", escaped) + "$")


def fill(path: str) -> str:
    """A concrete URL for a path template: ids that exist nowhere."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: "999999" if m.group(1) in ("token_id", "admin_id") else "x_missing",
        path,
    )


def csrf_of(html: str) -> str:
    """The CSRF token of a console page's forms."""
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@dataclass
class Console:
    """A browser-like client of the console and its CSRF token."""

    client: httpx.Client
    csrf: str

    def session_id(self) -> str | None:
        return self.client.cookies.get(SESSION_COOKIE, domain="127.0.0.1", path="/admin")

    def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})})

    def signed_in(self) -> bool:
        """Whether the dashboard opens (rather than redirecting to the sign-in page)."""
        return self.client.get("/admin/").status_code == 200


def new_console(base_url: str) -> Console:
    """A client that has opened the sign-in page (so it holds a CSRF cookie)."""
    client = httpx.Client(base_url=base_url, timeout=60)
    return Console(client, csrf_of(client.get("/admin/login").text))


def sign_in(base_url: str, admin: SeededAdmin, *, second_factor: bool = True) -> Console:
    """A console client signed in as ``admin`` (TOTP step included unless told not to)."""
    console = new_console(base_url)
    response = console.post("/admin/login", {"email": admin.email, "password": admin.password})
    assert response.status_code == 303, response.text[:300]
    if admin.seed is not None and second_factor:
        response = console.post("/admin/2fa", {"code": admin.code()})
        assert response.status_code == 303, response.text[:300]
        assert console.signed_in()
    # Signed in, forms carry a token bound to the session: the sign-in page's no longer.
    page = console.client.get("/admin/")
    if page.status_code == 200:
        console.csrf = csrf_of(page.text)
    return console


@dataclass
class AccessServer:
    """A Paydesk served over loopback HTTP on its own SQLite database, with the sandbox."""

    stack: Stack
    base_url: str
    app: FastAPI


@contextmanager
def access_server(
    tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[AccessServer]:
    """Start sandbox + a migrated SQLite database + uvicorn serving ``create_app``."""
    url = f"sqlite:///{tmp_path / 'access.db'}"
    upgrade_to_head(url)
    with running_stack(url, extra_env) as stack:
        app = create_app(stack.settings, engine=stack.engine)
        with serve_in_thread(app) as base:
            yield AccessServer(stack, base, app)
