"""The worker's own Prometheus metrics, served by ``paydesk worker --metrics-port``.

What only a worker process knows: the attempts it committed, by event type and
result; its batches and their duration; events it left to others (busy objects,
lost leases); releases the database refused; its rounds; its re-fetches and every
HTTP attempt of its Stripe gateway (the same ``paydesk_stripe_api_*`` series as the
API pods', so the Stripe alerts see the worker's calls too). The figures read from
the database (backlog, lag, parked events) are the API's: the worker does not
export them again.

The counts live in the ``Worker``'s counters (those of its exit line); a collector
copies them at scrape time. ``GET /healthz`` answers 200 while the process serves;
``GET /readyz`` answers 200 once the worker's last round (claim and apply) went
through, 503 before its first round and while rounds fail (database unreachable).
``GET /metrics`` follows the API's rule: with ``PAYDESK_METRICS_TOKEN`` set it wants
``Authorization: Bearer <token>`` (401 otherwise); without one it is served in
development only (404 elsewhere).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from paydesk import __version__
from paydesk.analytics.prometheus import StripeCallMetrics
from paydesk.logs import get_logger
from paydesk.webhooks.process import Worker
from paydesk.webhooks.reconcile import Gap

log = get_logger(__name__)

BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
EVENT_RESULTS = ("applied", "ignored", "failed", "parked")
BATCH_RESULTS = ("committed", "lease_lost", "rolled_back")


class WorkerMetrics:
    """The registry of one worker process: Stripe and batch instruments, the counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Same names, labels and buckets as the API's (paydesk.analytics.prometheus).
        self.observe_stripe = StripeCallMetrics(self.registry).observe
        self.batches = Counter(
            "paydesk_worker_batches",
            "Claimed batches by result: committed, lease_lost (rolled back, another worker "
            "owns some events now), rolled_back (failed as a whole, released).",
            ["result"],
            registry=self.registry,
        )
        self.batch_duration = Histogram(
            "paydesk_worker_batch_duration_seconds",
            "Time to apply a claimed batch, whatever its result.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        for result in BATCH_RESULTS:
            self.batches.labels(result)
        self.events_missing = Gauge(
            "paydesk_worker_reconcile_missing_events",
            "Events Stripe lists (last 30 days, older than the grace period) that the inbox "
            "lacked at the reconciler's last comparison; they are backfilled at once.",
            registry=self.registry,
        )
        self.events_backfilled = Counter(
            "paydesk_worker_reconcile_backfilled_events",
            "Events the reconciler found missing and stored (source backfill).",
            registry=self.registry,
        )
        self.reconciled_at = Gauge(
            "paydesk_worker_reconcile_last_success_timestamp_seconds",
            "When the reconciler last compared Stripe's events with the inbox.",
            registry=self.registry,
        )
        self._worker: Worker | None = None

    def observe_gap(self, gap: Gap) -> None:
        """Reconciler observer: export one comparison's result."""
        self.events_missing.set(gap.missing)
        self.events_backfilled.inc(gap.stored)
        self.reconciled_at.set(gap.at)

    def observe_batch(self, result: str, seconds: float, _size: int) -> None:
        """Worker batch observer: count and time one batch."""
        self.batches.labels(result).inc()
        self.batch_duration.observe(seconds)

    def watch(self, worker: Worker) -> None:
        """Export ``worker``'s counters (once; the worker is built after the gateway)."""
        if self._worker is not None:
            raise RuntimeError("this registry already exports a worker")
        self._worker = worker
        self.registry.register(WorkerCollector(worker))

    @property
    def ready(self) -> bool:
        """Whether the watched worker's last round went through."""
        return self._worker is not None and self._worker.snapshot().last_round_ok is True

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


class WorkerCollector(Collector):
    """A worker's counters as metric families, copied at scrape time."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families are built from the counters at each scrape."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The families of the counters as they are now."""
        counts = self._worker.snapshot()
        info = GaugeMetricFamily("paydesk_build_info", "Paydesk version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        events = CounterMetricFamily(
            "paydesk_worker_events",
            "Attempts at stored Stripe events committed by this worker, by event type and "
            "result: applied, ignored (unhandled type), failed (retried later), parked "
            "(the last attempt failed).",
            labels=["type", "result"],
        )
        for (event_type, result), count in sorted(counts.by_type.items()):
            events.add_metric([event_type, result], count)
        yield events
        for name, doc, value in (
            (
                "paydesk_worker_busy_events",
                "Events left for a later round because another worker was writing their object.",
                counts.skipped_busy,
            ),
            (
                "paydesk_worker_lease_lost_events",
                "Events this worker skipped or rolled back because another worker had "
                "claimed them after this worker's lease ran out.",
                counts.lease_lost,
            ),
            (
                "paydesk_worker_other_api_version_events",
                "Events applied or attempted whose API version is not the SDK's pinned one.",
                counts.other_api_version,
            ),
            (
                "paydesk_worker_release_failures",
                "Releases of events the database refused after every retry (kept and tried "
                "again before each claim).",
                counts.release_failures,
            ),
            (
                "paydesk_worker_round_failures",
                "Rounds (claim and apply) that failed, e.g. with the database unreachable.",
                counts.round_failures,
            ),
            (
                "paydesk_worker_stripe_refetches",
                "Objects re-fetched from Stripe (an event older than the mirror, a tie, or a "
                "charge before its payment).",
                self._worker.refetches,
            ),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], value)
            yield family
        unreleased = GaugeMetricFamily(
            "paydesk_worker_unreleased_events",
            "Events whose release failed and is kept for a later attempt.",
        )
        unreleased.add_metric([], self._worker.unreleased)
        yield unreleased
        last = GaugeMetricFamily(
            "paydesk_worker_last_round_success_timestamp_seconds",
            "Unix time at which a round of this worker last went through (0: none yet).",
        )
        last.add_metric([], counts.last_round_ok_at or 0.0)
        yield last


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` of a worker, on a daemon thread."""

    def __init__(
        self,
        metrics: WorkerMetrics,
        *,
        host: str,
        port: int,
        token: str | None,
        open_without_token: bool,
    ) -> None:
        self._metrics = metrics
        self._token = token.encode() if token else None
        self._open = open_without_token
        handler = self._handler_class()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="paydesk-worker-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start answering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self, path: str, authorization: str) -> tuple[HTTPStatus, bytes, str]:
        """Status, body and content type for a GET of ``path``."""
        text = "text/plain; charset=utf-8"
        if path == "/healthz":
            return HTTPStatus.OK, b"ok\n", text
        if path == "/readyz":
            if self._metrics.ready:
                return HTTPStatus.OK, b"ready\n", text
            return HTTPStatus.SERVICE_UNAVAILABLE, b"no successful round yet\n", text
        if path != "/metrics":
            return HTTPStatus.NOT_FOUND, b"not found\n", text
        if self._token is None:
            if not self._open:
                return HTTPStatus.NOT_FOUND, b"not found\n", text
        else:
            scheme, _, given = authorization.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self._token
            ):
                return HTTPStatus.UNAUTHORIZED, b"a valid metrics bearer token is required\n", text
        return HTTPStatus.OK, self._metrics.exposition(), CONTENT_TYPE_LATEST

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "paydesk-worker"
            sys_version = ""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                try:
                    status, body, content_type = server.answer(
                        path, self.headers.get("Authorization", "")
                    )
                except Exception:  # a failed scrape must not kill the thread
                    log.exception("worker_metrics_failed")
                    status, body, content_type = (
                        HTTPStatus.INTERNAL_SERVER_ERROR,
                        b"error\n",
                        "text/plain; charset=utf-8",
                    )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if status == HTTPStatus.UNAUTHORIZED:
                    self.send_header("WWW-Authenticate", "Bearer")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # Scrapes and probes every few seconds: not worth a log line each.
                return

        return Handler


@contextmanager
def serving_metrics(
    metrics: WorkerMetrics,
    *,
    host: str,
    port: int,
    token: str | None,
    open_without_token: bool,
) -> Iterator[MetricsServer]:
    """Serve ``metrics`` on ``host:port`` for the duration of the block.

    Raises ``OSError`` when the address cannot be bound.
    """
    server = MetricsServer(
        metrics, host=host, port=port, token=token, open_without_token=open_without_token
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
