"""Request bodies: credentials checked before a byte of the body is read, and a size
cap per route (pure ASGI, nothing buffered here).

FastAPI reads and parses a JSON body before it resolves a route's dependencies, so
an anonymous client could make the server hold and parse as much as it liked (20 ×
1 MB anonymous bodies grew the API by ~470 MB, one 100 MB body by ~760 MB). Here,
before the app sees the request:

- a body announced larger than its route's cap is answered 413 from the headers;
- a body sent without a length is counted as it streams and cut off at the cap (413);
- a request with a body to the Admin API or the billing API is authenticated first
  (Admin API token or app JWT); without valid credentials it is answered 401 and
  its body is never read. The route's own dependency authenticates again, so the
  permission checks stay where they were.

Webhook deliveries never reach this layer (``PaydeskApp`` serves them first, with
their own cap).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from http.cookies import CookieError, SimpleCookie
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paydesk.auth import sessions as admin_sessions
from paydesk.auth import tokens
from paydesk.errors import AuthenticationRequired, PaydeskError
from paydesk.logs import redact_text
from paydesk.web.errors import status_for

KIB = 1024
# (path prefix, cap in bytes), the first match wins. The largest legitimate bodies
# are small JSON documents and console forms (a note, a refund reason).
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/admin/", 64 * KIB),
    ("/api/billing/", 16 * KIB),
    ("/admin", 64 * KIB),
)
DEFAULT_BODY_LIMIT = 64 * KIB
MIB = 1024 * KIB
# Console forms that upload files (dispute evidence: Stripe takes 4.5 MB of files,
# plus the text fields). Their larger cap is only granted to a signed-in console
# session, checked from the cookie before a byte of the body is read.
UPLOAD_ROUTES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"/admin/disputes/[^/]{1,255}/evidence"), 6 * MIB),
)
# The whole body must arrive within this long: a client trickling 1 byte every few
# seconds would otherwise hold a connection and a worker thread for minutes.
BODY_READ_SECONDS = 10.0
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def upload_route(path: str) -> bool:
    """Whether ``path`` is a console form that takes file uploads."""
    return any(pattern.fullmatch(path) for pattern, _ in UPLOAD_ROUTES)


def body_limit(path: str) -> int:
    """The largest body accepted on ``path``."""
    for pattern, cap in UPLOAD_ROUTES:
        if pattern.fullmatch(path):
            return cap
    for prefix, limit in BODY_LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_BODY_LIMIT


class BodyTooLarge(StarletteHTTPException):
    """The streamed body passed its route's cap (413, however the route reads it)."""

    def __init__(self) -> None:
        super().__init__(413, "The request body is too large for this route.")


class BodyTooSlow(StarletteHTTPException):
    """The body did not arrive within ``BODY_READ_SECONDS`` (408)."""

    def __init__(self) -> None:
        super().__init__(408, f"The request body did not arrive within {BODY_READ_SECONDS:g} s.")


async def send_error(
    send: Send,
    scope: Scope,
    status: int,
    code: str,
    message: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer in Paydesk's error shape and close the connection (the body stays unread)."""
    request_id = scope.get("state", {}).get("request_id")
    body = json.dumps(
        {
            "error": {
                "code": code,
                "message": redact_text(message),
                "field": None,
                "request_id": request_id,
            }
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _same_origin(scope: Scope) -> bool:
    """Whether the request's ``Origin`` (when sent) names the host it was sent to.

    Browsers send ``Origin`` with every form POST; a request without it (an old
    browser, a script) is left to the CSRF token. Hosts are compared, not schemes,
    so TLS ending at a proxy does not matter.
    """
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    host = (_header(scope, b"host") or "").lower()
    scheme, _, netloc = origin.lower().partition("://")
    if scheme not in ("http", "https") or not netloc:
        return False  # "null" (a sandboxed frame, a redirect chain) and the like
    default = {"http": ":80", "https": ":443"}[scheme]
    return netloc.removesuffix(default) == host.removesuffix(default)


class BodyGateMiddleware:
    """Authenticate before the body, cap its size (see the module docstring)."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path.startswith("/admin") and not _same_origin(scope):
            # A console form posted from another site: refused before anything else,
            # whatever its CSRF token (defence in depth, and no session is touched).
            await send_error(
                send,
                scope,
                403,
                "cross_origin_refused",
                "The form was not posted from this console.",
            )
            return
        limit = body_limit(path)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await send_error(
                send,
                scope,
                413,
                "payload_too_large",
                f"The request body is limited to {limit // KIB} KiB here.",
            )
            return
        refusal = await self._credentials_problem(scope, path)
        if isinstance(refusal, AuthenticationRequired) and upload_route(path):
            # A console form: a signed-out browser goes to the sign-in page, as from
            # every console route; the body is still never read.
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", b"/admin/login"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if refusal is not None:
            status = status_for(refusal)
            headers = [(b"www-authenticate", b"Bearer")] if status == 401 else None
            await send_error(send, scope, status, refusal.code, refusal.message, headers)
            return

        received = 0
        started = False
        deadline = time.monotonic() + BODY_READ_SECONDS
        complete = False

        async def counted_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body, receive() waits for a disconnect: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(
                    receive(), timeout=max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                raise BodyTooSlow from None
            if message["type"] == "http.request" and not message.get("more_body", False):
                complete = True
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooSlow:
            if started:
                raise
            await send_error(
                send,
                scope,
                408,
                "request_timeout",
                f"The request body did not arrive within {BODY_READ_SECONDS:g} seconds.",
            )
        except BodyTooLarge:
            if started:
                raise
            await send_error(
                send,
                scope,
                413,
                "payload_too_large",
                f"The request body is limited to {limit // KIB} KiB here.",
            )

    async def _credentials_problem(self, scope: Scope, path: str) -> PaydeskError | None:
        if upload_route(path):
            return await run_in_threadpool(self._console_session_problem, scope)
        if path.startswith("/api/admin/"):
            return await run_in_threadpool(self._admin_token_problem, scope)
        if path.startswith("/api/billing/"):
            # A JWKS verifier may fetch keys over the network: not on the event loop.
            return await run_in_threadpool(self._app_token_problem, scope)
        return None

    def _bearer(self, scope: Scope, message: str, code: str) -> str | AuthenticationRequired:
        scheme, _, credential = (_header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return AuthenticationRequired(message, code=code)
        return credential.strip()

    def _admin_token_problem(self, scope: Scope) -> PaydeskError | None:
        credential = self._bearer(
            scope, "The Admin API needs a token: Authorization: Bearer pdk_…", "token_required"
        )
        if isinstance(credential, PaydeskError):
            return credential
        try:
            with self.state.sessions() as session:
                tokens.authenticate(session, self.state.settings, credential)
                session.rollback()  # a look only; the route's own check records the use
        except PaydeskError as exc:
            return exc
        except SQLAlchemyError:
            return None  # the route meets the same outage and answers it (503)
        return None

    def _console_session_problem(self, scope: Scope) -> PaydeskError | None:
        cookies = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(_header(scope, b"cookie") or "")
        morsel = cookies.get(admin_sessions.COOKIE)
        refused = AuthenticationRequired(
            "Sign in to the console to upload files.", code="sign_in_required"
        )
        try:
            with self.state.sessions() as session:
                loaded = admin_sessions.load(
                    session, self.state.settings, morsel.value if morsel else None
                )
                full = loaded is not None and loaded.row.stage == "full"
                session.rollback()  # a look only; the route loads the session again
        except SQLAlchemyError:
            return None  # the route meets the same outage and answers it (503)
        return None if full else refused

    def _app_token_problem(self, scope: Scope) -> PaydeskError | None:
        credential = self._bearer(
            scope,
            "Send the app's sign-in token as 'Authorization: Bearer <token>'.",
            "missing_token",
        )
        if isinstance(credential, PaydeskError):
            return credential
        try:
            self.state.app_tokens.verify(credential)
        except PaydeskError as exc:
            return exc
        return None
