"""The baseline: a bare ASGI endpoint that reads the body and answers 200."""

from __future__ import annotations

from typing import Any

_BODY = b'{"received":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"17")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Drain the request body, answer 200."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
