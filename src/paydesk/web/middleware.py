"""Request ids and access logging, as a pure ASGI middleware (no body buffering)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paydesk.logs import get_logger, redact_text
from paydesk.web.errors import internal_error_body

log = get_logger("paydesk.access")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# A portal link's path holds its single-use token: the access log keeps only the route.
_PORTAL_LINK = re.compile(r"^/portal/session/.*$")


def _logged_path(path: object) -> object:
    if isinstance(path, str) and _PORTAL_LINK.match(path):
        return "/portal/session/…"
    return path


async def _send_internal_error(send: Send, request_id: str) -> None:
    body = internal_error_body(request_id)
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Give every request an id (or keep a sane incoming one) and log its outcome."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        sane = _SAFE_REQUEST_ID.match(incoming) and redact_text(incoming) == incoming
        request_id = incoming if sane else f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Nothing handled it: log the details, answer a bare 500 that reveals none.
            log.error("unhandled_error", exc_info=exc, path=_logged_path(scope.get("path")))
            if response_started:
                raise
            status = 500
            await _send_internal_error(send_with_id, request_id)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=_logged_path(scope.get("path")),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")
