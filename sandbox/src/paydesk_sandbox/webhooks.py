"""Asynchronous, signed webhook delivery with retries and a delivery log.

``SandboxState.emit`` hands every event to :meth:`WebhookDeliverer.submit`, which
starts one delivery task per matching enabled endpoint on the server's event loop.
A delivery POSTs the event JSON with a ``Stripe-Signature`` header that
``stripe.Webhook.construct_event`` accepts; a non-2xx answer or a timeout is
retried after each of ``config.webhook_retry_delays``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import deque
from typing import Any

import httpx
import orjson

from paydesk_sandbox.state import SandboxState

Json = dict[str, Any]
LOG_SIZE = 10_000


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "t.payload")>`` as Stripe signs."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def endpoint_wants(endpoint: Json, event_type: str) -> bool:
    """Whether an enabled endpoint subscribes to ``event_type``."""
    if endpoint["status"] != "enabled":
        return False
    enabled = endpoint["enabled_events"]
    return "*" in enabled or event_type in enabled


class WebhookDeliverer:
    """Delivers events of one sandbox state; lives on the server's loop."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        # Every attempt, oldest first; bounded so a long demo doesn't grow forever.
        self.log: deque[Json] = deque(maxlen=LOG_SIZE)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog: list[tuple[str, str]] = []

    async def start(self) -> None:
        """Bind to the running loop and send what was emitted before."""
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(timeout=self.state.config.webhook_timeout)
        backlog, self._backlog = self._backlog, []
        for endpoint_id, event_id in backlog:
            self._spawn(endpoint_id, event_id)

    async def stop(self) -> None:
        """Cancel pending deliveries and close the HTTP client."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        self._loop = None

    def submit(self, event: Json) -> None:
        """Queue ``event`` for every enabled endpoint that wants it."""
        endpoints = self.state.objects.get("webhook_endpoint")
        if not endpoints:
            return
        for endpoint in endpoints.values():
            if endpoint_wants(endpoint, event["type"]):
                event["pending_webhooks"] += 1
                if self._loop is None:
                    self._backlog.append((endpoint["id"], event["id"]))
                else:
                    self._loop.call_soon_threadsafe(self._spawn, endpoint["id"], event["id"])

    def _spawn(self, endpoint_id: str, event_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(endpoint_id, event_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, endpoint_id: str, event_id: str) -> None:
        event = self.state.store("event").get(event_id)
        if event is None:
            return
        # The payload is fixed at the first attempt: retries resend the same bytes.
        payload = orjson.dumps(event)
        delays = (0.0, *self.state.config.webhook_retry_delays)
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                await asyncio.sleep(delay)
            endpoint = self.state.store("webhook_endpoint").get(endpoint_id)
            if endpoint is None or endpoint["status"] != "enabled":
                return  # deleting or disabling an endpoint stops its retries
            if await self._attempt(endpoint, event, payload, attempt):
                event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
                return

    async def _attempt(self, endpoint: Json, event: Json, payload: bytes, attempt: int) -> bool:
        assert self._client is not None
        secret = self.state.private_of(endpoint["id"])["secret"]
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": signature_header(payload, secret),
        }
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(endpoint["url"], content=payload, headers=headers)
            status = response.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        self.log.append(
            {
                "endpoint": endpoint["id"],
                "url": endpoint["url"],
                "event": event["id"],
                "type": event["type"],
                "attempt": attempt,
                "status": status,
                "error": error if error is not None else (None if ok else f"HTTP {status}"),
                "succeeded": ok,
                "at": time.time(),
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
            }
        )
        return ok
