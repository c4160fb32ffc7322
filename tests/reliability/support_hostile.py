"""A real Paydesk for the hostile-input area: sandbox stack, PostgreSQL, uvicorn on loopback.

The app is wrapped in ``Tally``, an ASGI layer outermost of everything (the webhook fast
path included) that counts what the *server* answered: requests, and every 5xx with its
method and path. The checks assert on the server's own count, not only on what the
fuzzer reports, so a 5xx cannot hide behind a client-side retry or a lenient check.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paydesk.db.migrate import upgrade_to_head
from paydesk.db.models import StripeEvent
from paydesk.db.models.events import WebhookRejection
from paydesk.web import create_app
from tests.support.admins import admin_token, make_admin, make_token
from tests.support.databases import throwaway_postgres
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack, running_stack

WEBHOOK_SECRET = "whsec_" + "hostile" + "Secr3t" * 5
OTHER_SECRET = "whsec_" + "another" + "Secr3t" * 5
JWT_SECRET = "hostile-input-jwt-secret-" + "x" * 24
WEBHOOK_PATH = "/api/webhooks/stripe"


@dataclass
class Tally:
    """ASGI middleware counting the server's answers (thread-safe enough: one event loop)."""

    app: ASGIApp
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[tuple[str, str, int]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.statuses[status] += 1
                if status >= 500:
                    self.server_errors.append((scope["method"], scope["path"], status))
            await send(message)

        await self.app(scope, receive, counting_send)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def mark(self) -> tuple[int, int]:
        """(requests, server errors) so far, to measure one check's share."""
        return self.requests, len(self.server_errors)


@dataclass
class HostileServer:
    """The served app and what a check needs to reach every handler."""

    stack: Stack
    base_url: str
    tally: Tally
    # Kept out of repr: pytest prints fixtures in a failure's traceback.
    admin_token: str = field(repr=False)
    app: Any

    @property
    def engine(self) -> Engine:
        return self.stack.engine

    def app_jwt(self, user_id: str = "hostile-user-1") -> str:
        """A billing-API token for an app user (HS256 with the configured secret)."""
        now = int(time.time())
        claims = {"sub": user_id, "email": f"{user_id}@paydesk.test", "iat": now}
        claims["exp"] = now + 3600
        return jwt.encode(claims, JWT_SECRET, algorithm="HS256")

    def fresh_token(self) -> str:
        """An API token of a new admin: the fuzzers may revoke or disable earlier ones."""
        settings, sessions = self.stack.settings, self.stack.sessions
        admin = make_admin(sessions, settings, "admin", email=f"a{time.time_ns()}@example.com")
        return make_token(sessions, settings, admin)

    def count(self, model: Any) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def stored_events(self) -> int:
        return self.count(StripeEvent)

    def rejections(self) -> int:
        """Refused deliveries (rows are counters per reason, address and hour)."""
        with Session(self.engine) as session:
            total = session.scalar(select(func.sum(WebhookRejection.count)))
            return int(total or 0)


@contextmanager
def hostile_server() -> Iterator[HostileServer]:
    """A migrated throwaway PostgreSQL, the sandbox stack and Paydesk served over HTTP."""
    with throwaway_postgres() as url:
        upgrade_to_head(url)
        extra = {"STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "PAYDESK_JWT_SECRET": JWT_SECRET}
        with running_stack(url, extra_env=extra) as stack:
            token = admin_token(stack.sessions, stack.settings)
            app = create_app(stack.settings, engine=stack.engine)
            tally = Tally(app)
            with serve_in_thread(tally) as base:
                yield HostileServer(
                    stack=stack, base_url=base, tally=tally, admin_token=token, app=app
                )


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<HMAC-SHA256(secret, "t." + payload)>``, computed here over raw bytes."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def console_client(server: HostileServer, role: str = "admin") -> tuple[httpx.Client, str]:
    """A client signed in to the console (password + TOTP) as a new admin, and its CSRF."""
    email = f"{role}-{time.time_ns()}@example.com"
    admin = make_admin(server.stack.sessions, server.stack.settings, role, email=email)
    client = httpx.Client(base_url=server.base_url, timeout=60)
    token = csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": admin.email, "password": admin.password},
    )
    assert response.status_code == 303, response.text
    response = client.post("/admin/2fa", data={"csrf_token": token, "code": admin.code()})
    assert response.status_code == 303, response.text
    dashboard = client.get("/admin/")
    assert dashboard.status_code == 200
    # Signed in, forms carry a token bound to the session.
    return client, csrf_of(dashboard.text)


def console_routes(app: Any) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path, path parameters, query parameters) of every console route."""
    from fastapi import FastAPI
    from fastapi.routing import APIRoute
    from starlette.routing import Mount

    mounts = [r for r in app.router.routes if isinstance(r, Mount) and r.path == "/admin"]
    console = mounts[0].app
    assert isinstance(console, FastAPI)
    found = []
    for route in console.routes:
        if isinstance(route, APIRoute):
            path_params = [p.name for p in route.dependant.path_params]
            query = [p.alias for p in route.dependant.query_params]
            for method in sorted(route.methods):
                found.append((method, "/admin" + route.path, path_params, query))
    return found
