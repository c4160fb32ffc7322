"""Helpers for sandbox tests: an SDK client factory and a verifying webhook receiver.

Importable from any test under tests/sandbox (``from sandbox_testkit import ...``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import stripe

TEST_KEY = "sk_test_" + "sandbox" + "x" * 17  # a fake test key, built at runtime


def make_client(url: str, key: str = TEST_KEY) -> stripe.StripeClient:
    """An SDK client for ``url`` that never retries (so errors surface at once)."""
    return stripe.StripeClient(key, base_addresses={"api": url}, max_network_retries=0)


class WebhookReceiver:
    """Receives webhook deliveries and verifies their signatures."""

    def __init__(self) -> None:
        self.events: list[stripe.Event] = []
        self.bad_signatures = 0
        self.requests = 0
        self.secret: str | None = None
        self.fail_next = 0  # answer this many deliveries with HTTP 500 first
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver._handle(body, self.headers.get("stripe-signature", ""))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, body: bytes, header: str) -> int:
        with self._cond:
            self.requests += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500
            try:
                assert self.secret is not None
                event = stripe.Webhook.construct_event(body.decode(), header, self.secret)
            except (stripe.SignatureVerificationError, ValueError, AssertionError):
                self.bad_signatures += 1
                return 400
            self.events.append(event)
            self._cond.notify_all()
            return 200

    def register(
        self, client: stripe.StripeClient, enabled_events: list[str] | None = None
    ) -> stripe.WebhookEndpoint:
        """Create a webhook endpoint for this receiver and keep its secret."""
        endpoint = client.v1.webhook_endpoints.create(
            params={"url": self.url, "enabled_events": enabled_events or ["*"]}
        )
        self.secret = endpoint.secret
        return endpoint

    def types(self) -> list[str]:
        """Types of the events received so far, in arrival order."""
        with self._cond:
            return [e.type for e in self.events]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 5.0) -> list[stripe.Event]:
        """Wait until ``count`` events of ``event_type`` arrived; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events if e.type == event_type]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {count}x {event_type} within {timeout}s; got {self.types()}"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()


TRIGGERS = Path(__file__).resolve().parents[1] / "reference" / "stripe-cli-triggers"


def replay_trigger(client: stripe.StripeClient, fixture: Path) -> dict[str, Any]:
    """Run a Stripe CLI trigger fixture (``stripe trigger <event>``) step by step.

    ``${name:path}`` refers to an earlier step's response; a step with
    ``expected_error_type`` must fail with that error type. Returns each step's
    response (or error body) by name.
    """
    spec = json.loads(fixture.read_text())
    results: dict[str, Any] = {}
    for step in spec["fixtures"]:
        path = _substitute(step["path"], results)
        params = _substitute(step.get("params", {}), results)
        expected = step.get("expected_error_type")
        failure: stripe.StripeError | None = None
        try:
            response = client.raw_request(step["method"], path, **params)
        except stripe.StripeError as exc:
            failure = exc
        if failure is None:
            assert expected is None, f"{step['name']} should have failed with {expected}"
            results[step["name"]] = json.loads(response.body)
            continue
        assert expected is not None, f"{step['name']} failed: {failure}"
        assert failure.error is not None
        assert failure.error.type == expected
        results[step["name"]] = failure.json_body
    return results


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$\{([^:}]+):([^}]+)\}", lambda m: _lookup(results, m[1], m[2]), value)
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    return value


def _lookup(results: dict[str, Any], name: str, path: str) -> str:
    node: Any = results[name]
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return str(node)
