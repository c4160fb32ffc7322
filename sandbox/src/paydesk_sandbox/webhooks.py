"""Asynchronous, signed webhook delivery with retries and a delivery log.

``SandboxState.emit`` hands every event to :meth:`WebhookDeliverer.submit`, which
starts one delivery task per matching enabled endpoint on the server's event loop.
A delivery POSTs the event JSON with a ``Stripe-Signature`` header that
``stripe.Webhook.construct_event`` accepts.

Delivering like Stripe:

- every attempt opens a fresh connection (its own short-lived HTTP client): a
  timeout, a refused connection or a half-read answer can never leave a pooled
  connection behind that poisons later deliveries (httpx's shared pool can end up
  answering every later request with ``PoolTimeout`` after a burst of timeouts);
- at most ``config.webhook_concurrency`` (16) attempts per endpoint are in flight, so a
  slow endpoint is not stormed by thousands of parallel retries;
- a non-2xx answer or a transport error is retried after each of
  ``config.webhook_retry_delays`` (Stripe's schedule of up to three days, compressed
  for the sandbox); with ``config.webhook_keep_retrying`` (the default) the last
  delay then repeats until the event is delivered or the endpoint is disabled or
  deleted, as Stripe keeps trying until it disables a failing endpoint;
- deliveries still owed survive a restart: they are part of the snapshot.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
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
        # Deliveries not yet acknowledged, by (endpoint id, event id): attempts so far,
        # the last error and when the next attempt is due (GET /_sandbox/deliveries).
        self.owed: dict[tuple[str, str], Json] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ssl: ssl.SSLContext | None = None
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog: list[tuple[str, str]] = []

    async def start(self) -> None:
        """Bind to the running loop and send what was emitted (or owed) before."""
        self._loop = asyncio.get_running_loop()
        # One TLS context for every attempt (building one costs milliseconds).
        self._ssl = httpx.create_ssl_context()
        backlog, self._backlog = self._backlog, []
        restored, self.state.owed_deliveries = self.state.owed_deliveries, []
        for endpoint_id, event_id in [*restored, *backlog]:
            self._spawn(endpoint_id, event_id)

    async def stop(self) -> None:
        """Cancel pending deliveries (they stay owed, and are saved in the snapshot)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._loop = None

    def owed_pairs(self) -> list[tuple[str, str]]:
        """(endpoint id, event id) of every delivery not acknowledged yet."""
        return [*self.owed, *self._backlog]

    def failing(self) -> list[Json]:
        """Deliveries that failed at least once and are still owed, oldest first."""
        return [dict(row) for row in self.owed.values() if row["attempts"] > 0]

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
        key = (endpoint_id, event_id)
        if key in self.owed:
            return  # already being delivered
        self.owed[key] = {
            "endpoint": endpoint_id,
            "event": event_id,
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": time.time(),
        }
        task = asyncio.get_running_loop().create_task(self._deliver(endpoint_id, event_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _delay(self, failures: int) -> float | None:
        """The wait after the ``failures``-th failed attempt; None: give up."""
        delays = self.state.config.webhook_retry_delays
        if failures <= len(delays):
            return delays[failures - 1]
        if self.state.config.webhook_keep_retrying and delays:
            return delays[-1]
        return None

    async def _deliver(self, endpoint_id: str, event_id: str) -> None:
        key = (endpoint_id, event_id)
        try:
            event = self.state.store("event").get(event_id)
            if event is None:
                self.owed.pop(key, None)
                return
            # The payload is fixed at the first attempt: retries resend the same bytes.
            payload = orjson.dumps(event)
            attempt = 0
            while True:
                endpoint = self.state.store("webhook_endpoint").get(endpoint_id)
                if endpoint is None or endpoint["status"] != "enabled":
                    self.owed.pop(key, None)
                    return  # deleting or disabling an endpoint stops its retries
                attempt += 1
                error = await self._attempt(endpoint, event, payload, attempt)
                row = self.owed.setdefault(
                    key, {"endpoint": endpoint_id, "event": event_id, "last_error": None}
                )
                row["attempts"] = attempt
                if error is None:
                    self.owed.pop(key, None)
                    event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
                    return
                delay = self._delay(attempt)
                row["last_error"] = error
                if delay is None:
                    self.owed.pop(key, None)
                    return
                row["next_attempt_at"] = time.time() + delay
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise  # stopping: the delivery stays owed (and is saved with the snapshot)
        except Exception:
            self.owed.pop(key, None)  # a bug, not a failed delivery: don't claim it is owed
            raise

    async def _attempt(
        self, endpoint: Json, event: Json, payload: bytes, attempt: int
    ) -> str | None:
        """One POST on a fresh connection; None if acknowledged, else the error."""
        limit = self._limits.get(endpoint["id"])
        if limit is None:
            limit = self._limits[endpoint["id"]] = asyncio.Semaphore(
                self.state.config.webhook_concurrency
            )
        async with limit:
            return await self._post(endpoint, event, payload, attempt)

    async def _post(self, endpoint: Json, event: Json, payload: bytes, attempt: int) -> str | None:
        secret = self.state.private_of(endpoint["id"])["secret"]
        headers = {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": signature_header(payload, secret),
            "connection": "close",
        }
        timeout = self.state.config.webhook_timeout
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            # A client per attempt: its connection dies with it, whatever happened.
            async with httpx.AsyncClient(
                timeout=timeout,
                verify=self._ssl or True,
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as client:
                # The hard deadline covers connect + send + read whatever httpx does.
                response = await asyncio.wait_for(
                    client.post(endpoint["url"], content=payload, headers=headers),
                    timeout + 1.0,
                )
            status = response.status_code
        except TimeoutError:
            error = f"TimeoutError: no answer within {timeout}s"
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        if error is None and not ok:
            error = f"HTTP {status}"
        self.log.append(
            {
                "endpoint": endpoint["id"],
                "url": endpoint["url"],
                "event": event["id"],
                "type": event["type"],
                "attempt": attempt,
                "status": status,
                "error": error,
                "succeeded": ok,
                "at": time.time(),
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
            }
        )
        return None if ok else error
