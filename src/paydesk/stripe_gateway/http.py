"""The SDK's HTTP client, instrumented: each attempt is timed, logged (debug) and observed.

It also waits out rate limits: the SDK does not retry a 429, so a 429 that says when
to come back (``Retry-After`` of at most ``RATE_LIMIT_MAX_WAIT`` seconds) is sent
again, unchanged (same idempotency key), up to ``RATE_LIMIT_RETRIES`` times. A 429
means Stripe did not process the request, so sending it again cannot duplicate it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import stripe

from paydesk.logs import get_logger

log = get_logger("paydesk.stripe")

RATE_LIMIT_RETRIES = 2
RATE_LIMIT_MAX_WAIT = 5.0

# Stripe ids look like cus_NffrFeUfNV2Hib: a lower-case prefix, then random characters
# with upper-case letters or digits — which resource names (payment_intents) never have.
_ID_SEGMENT = re.compile(r"^[a-z]+(?:_[a-z]+)*_(?=[A-Za-z0-9]*[A-Z0-9])[A-Za-z0-9]{6,}$")


def route_template(path: str) -> str:
    """``/v1/customers/cus_123abc`` → ``/v1/customers/{id}`` (bounded label values)."""
    return "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in path.split("/"))


@dataclass(frozen=True)
class StripeCall:
    """One HTTP attempt to Stripe, as seen by observers (metrics) and the debug log."""

    method: str
    route: str
    status: int | None
    request_id: str | None
    duration_s: float
    error: str | None = None


Observer = Callable[[StripeCall], None]


class ObservedRequestsClient(stripe.RequestsClient):
    """``RequestsClient`` that reports every attempt (retries included)."""

    def __init__(self, *, timeout: float, debug: bool, observers: list[Observer]) -> None:
        super().__init__(timeout=timeout)
        self._debug = debug
        self._observers = observers

    # The SDK's HTTPClient and RequestsClient annotate request() differently; we
    # follow RequestsClient, the class we extend.
    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        route = route_template(urlsplit(url).path)
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            started = time.perf_counter()
            try:
                body, status, response_headers = super().request(method, url, headers, post_data)
            except stripe.APIConnectionError as exc:
                call = StripeCall(method.upper(), route, None, None, _since(started), "network")
                self._report(call)
                raise exc
            request_id = response_headers.get("Request-Id") or response_headers.get("request-id")
            self._report(StripeCall(method.upper(), route, status, request_id, _since(started)))
            wait = retry_after(response_headers) if status == 429 else None
            if wait is None or wait > RATE_LIMIT_MAX_WAIT or attempt == RATE_LIMIT_RETRIES:
                break
            time.sleep(wait)
        return body, status, response_headers

    def _report(self, call: StripeCall) -> None:
        if self._debug:
            # Method, route, status, request id and duration only: never headers or bodies.
            log.info(
                "stripe_request",
                method=call.method,
                path=call.route,
                status=call.status,
                request_id=call.request_id,
                duration_ms=round(call.duration_s * 1000, 1),
                error=call.error,
            )
        for observer in self._observers:
            observer(call)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds form), or None."""
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None  # an HTTP date: not worth waiting for here
    return seconds if 0 <= seconds < float("inf") else None


def _since(started: float) -> float:
    return time.perf_counter() - started
