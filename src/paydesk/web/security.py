"""Security headers on every response (pure ASGI, no body buffering).

The console has no inline script or style, so the CSP allows only same-origin
scripts and styles; framing is denied outright; HSTS is sent when the request
arrived over TLS (directly or per the proxy headers uvicorn trusts).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# FastAPI's development API docs load their UI from a CDN with an inline script.
_CSP_EXEMPT = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Add CSP, frame denial, nosniff, referrer policy and (over TLS) HSTS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        extra = list(_COMMON)
        if not path.startswith(_CSP_EXEMPT):
            extra.append((b"content-security-policy", CSP.encode()))
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))
        # The console, the customer portal and every Admin API answer (one carries a new
        # API token, others customer data): never kept by a browser or a shared cache.
        if path.startswith(("/admin", "/portal", "/api/admin/")):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers.extend(item for item in extra if item[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
