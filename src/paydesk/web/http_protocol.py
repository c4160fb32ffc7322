"""uvicorn's HTTP protocol with a deadline on request headers (``paydesk serve``).

uvicorn has no header read timeout: its keep-alive timer is cancelled by every
byte received, so a client sending a header 1 byte every 5 s holds a connection
(and a file descriptor, and a slot of the ingress) for as long as it likes; a few
thousand such clients exhaust a pod. ``limits.py`` bounds bodies (408 after
``BODY_READ_SECONDS``), but the app never sees a request whose headers are not
complete, so this has to live in the protocol: from the moment a connection opens,
or a response completes on a kept-alive one, the next request's headers must be
complete within ``HEADER_READ_SECONDS``, or the connection is answered 408 and
closed.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_READ_SECONDS = 10.0
_TIMEOUT_MESSAGE = b"The request headers did not arrive in time."
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_TIMEOUT_MESSAGE)).encode() + b"\r\n"
    b"connection: close\r\n"
    b"\r\n" + _TIMEOUT_MESSAGE
)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` closing connections whose headers arrive too slowly."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn arms its keep-alive timer exactly when no pipelined request is
        # waiting: the connection now waits for the next request's headers.
        if not self.transport.is_closing() and self.timeout_keep_alive_task is not None:
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(
            HEADER_READ_SECONDS, self._header_deadline_passed
        )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        # No request is in flight (the deadline is disarmed while one is), so nothing
        # else writes to the transport.
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()
