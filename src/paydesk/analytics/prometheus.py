"""Prometheus metrics of one Paydesk app: Stripe API calls observed in process, the rest
read from the database at scrape time.

Webhook, payment, refund, dispute and subscription figures come from the tables
every process writes (the webhook inbox, the rejections log, the mirror), so an
API pod reports what the workers did without any shared in-memory state, and
counters survive restarts. They are read by one collector with a short cache, so
scrapes from several Prometheus servers cost one set of queries. Several API pods
report the same database figures: aggregate them with ``max``, not ``sum``.

Each app gets its own ``CollectorRegistry``; nothing here is a module-level global.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from paydesk import __version__
from paydesk.analytics.business import (
    mrr_movements,
    payment_metrics,
    refund_metrics,
    round_minor,
)
from paydesk.db.models import (
    AuditEntry,
    DailyRollup,
    Dispute,
    MetricsSnapshot,
    StripeEvent,
    SubscriptionDaily,
    WebhookRejection,
)
from paydesk.logs import get_logger
from paydesk.stripe_gateway.http import StripeCall

log = get_logger(__name__)

STRIPE_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_WINDOW = timedelta(minutes=5)  # processing lag: events applied in the last 5 minutes
RATIO_WINDOW = timedelta(hours=24)  # payment/refund/dispute ratio gauges
CHURN_WINDOW = timedelta(days=30)  # churn gauges
BUSINESS_CACHE_SECONDS = 60.0  # the business gauges (MRR, churn, ratios) refresh at most this often
# Events received by type, applied, ignored: whole-inbox counts, shared by the deployment
# and refreshed every this many cache periods (30 s with the default 5 s cache).
INBOX_TOTALS_PER_CACHE = 6
_OUTCOME_BY_STATUS = {401: "auth_error", 402: "card_error", 403: "auth_error", 429: "rate_limited"}
_DISPUTE_CLOSED = ("won", "lost", "warning_closed", "prevented")


def stripe_outcome(call: StripeCall) -> str:
    """A bounded label: success, card_error (402), auth_error (401/403), rate_limited,
    client_error (other 4xx), server_error or network."""
    if call.status is None:
        return "network"
    if call.status < 400:
        return "success"
    return _OUTCOME_BY_STATUS.get(
        call.status, "client_error" if call.status < 500 else "server_error"
    )


class StripeCallMetrics:
    """The Stripe API instruments of one registry: the API's and each worker's use the
    same names, labels and buckets, so one query covers both."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "paydesk_stripe_api_requests",
            "HTTP attempts to the Stripe API (retries included), by outcome.",
            ["method", "route", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "paydesk_stripe_api_request_duration_seconds",
            "Duration of HTTP attempts to the Stripe API.",
            ["method", "route"],
            buckets=STRIPE_LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, call: StripeCall) -> None:
        """Gateway observer: count and time one Stripe API attempt."""
        self.requests.labels(call.method, call.route, stripe_outcome(call)).inc()
        self.duration.labels(call.method, call.route).observe(call.duration_s)


class PaydeskMetrics:
    """The registry of one app, its Stripe API instruments and the database collector."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        cache_seconds: float = 5.0,
        inbox_seconds: float | None = None,
        business_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        key_created: date | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.observe_stripe = StripeCallMetrics(self.registry).observe
        self.registry.register(
            DatabaseCollector(
                sessions,
                cache_seconds=cache_seconds,
                inbox_seconds=inbox_seconds,
                business_seconds=business_seconds,
                clock=clock,
            )
        )
        if key_created is not None:
            self.registry.register(KeyAgeCollector(key_created, clock))

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


class KeyAgeCollector(Collector):
    """Age of the Stripe secret key (``PAYDESK_STRIPE_KEY_CREATED``), for the rotation alert."""

    def __init__(self, created: date, clock: Callable[[], float]) -> None:
        self._created = created
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """One gauge: whole days since the key's creation date."""
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        gauge = GaugeMetricFamily(
            "paydesk_stripe_key_age_days",
            "Days since the Stripe secret key was created (PAYDESK_STRIPE_KEY_CREATED); "
            "the guide asks for a rotation every 90 days.",
        )
        gauge.add_metric([], (today - self._created).days)
        yield gauge


class DatabaseCollector(Collector):
    """Figures read from the database at scrape time, cached for ``cache_seconds``."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        cache_seconds: float,
        clock: Callable[[], float],
        inbox_seconds: float | None = None,
        business_seconds: float | None = None,
    ) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None
        # MRR and churn replay the subscription history: refreshed less often.
        self._business_seconds = (
            max(cache_seconds, BUSINESS_CACHE_SECONDS)
            if business_seconds is None
            else business_seconds
        )
        self._business: tuple[float, list[Metric]] | None = None
        # Whole-inbox counts: once per this period for the whole deployment.
        self._inbox_seconds = (
            cache_seconds * INBOX_TOTALS_PER_CACHE if inbox_seconds is None else inbox_seconds
        )

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families are known only after reading the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The cached families, refreshed when older than the cache time."""
        with self._lock:
            now = self._clock()
            if self._cached is None or now - self._cached[0] >= self._cache_seconds:
                self._cached = (now, self._read(now))
            families = self._cached[1]
        yield from families

    def _read(self, now: float) -> list[Metric]:
        info = GaugeMetricFamily("paydesk_build_info", "Paydesk version.", labels=["version"])
        info.add_metric([__version__], 1)
        up = GaugeMetricFamily(
            "paydesk_database_up", "1 when the database answered the metrics' SELECT 1."
        )
        family_up = GaugeMetricFamily(
            "paydesk_metrics_family_up",
            "1 when the last read of this group of database metrics worked, else 0 (its "
            "metrics are then left out of the scrape; the log says why).",
            labels=["family"],
        )
        families: list[Metric] = []
        try:
            with self._sessions() as session:
                session.execute(select(1))
        except Exception:
            log.exception("metrics_database_unreachable")
            up.add_metric([], 0)
            return [info, up]
        up.add_metric([], 1)
        groups: list[tuple[str, Callable[[Session], list[Metric]]]] = [
            ("webhooks", lambda session: webhook_families(session, now, self._inbox_seconds)),
            ("mirror", lambda session: mirror_families(session, now)),
            ("access", lambda session: access_families(session, now)),
        ]
        if self._business is None or now - self._business[0] >= self._business_seconds:
            groups.append(("business", lambda session: self._read_business(session, now)))
        for name, read in groups:
            try:
                with self._sessions() as session:
                    families.extend(read(session))
            except Exception:
                # One group failing is that group's failure, not the database's.
                log.exception("metrics_read_failed", family=name)
                family_up.add_metric([name], 0)
            else:
                family_up.add_metric([name], 1)
        if self._business is not None and not any(name == "business" for name, _ in groups):
            family_up.add_metric(["business"], 1)
        if self._business is not None:
            families.extend(self._business[1])
        return [info, up, family_up, *families]

    def _read_business(self, session: Session, now: float) -> list[Metric]:
        # Once per period for the whole deployment, not once per pod.
        figures = shared(
            session,
            "business_figures",
            now,
            self._business_seconds,
            lambda: business_figures(session, now, currencies_of(session)),
        )
        self._business = (now, business_families_of(figures))
        return []


def _counter(name: str, doc: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels or [])


def shared(
    session: Session, name: str, now: float, period: float, compute: Callable[[], Any]
) -> Any:
    """``compute()`` (JSON-able) at most once per ``period`` for the whole deployment.

    The figures live in a ``metrics_snapshots`` row: the scrape that finds it stale
    claims it with an UPDATE only one pod wins (committed at once), recomputes and
    stores it; every other scrape meanwhile serves the stored figures, which can
    therefore be up to ``period`` seconds old (longer if the recompute failed).
    """
    stored = session.get(MetricsSnapshot, name)
    if stored is not None and now - stored.computed_at < period:
        return json.loads(stored.body)
    if stored is not None:
        claim = (
            update(MetricsSnapshot)
            .where(
                MetricsSnapshot.name == name,
                MetricsSnapshot.computed_at == stored.computed_at,
            )
            .values(computed_at=now)
            .execution_options(synchronize_session=False)
        )
        result = cast("CursorResult[Any]", session.execute(claim))
        session.commit()
        if result.rowcount != 1:  # another pod is computing it: serve the stored one
            return json.loads(stored.body)
    figures = compute()
    body = json.dumps(figures)
    postgres = session.get_bind().dialect.name == "postgresql"
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    session.execute(
        dialect_insert(MetricsSnapshot)
        .values(name=name, computed_at=now, body=body)
        .on_conflict_do_update(index_elements=["name"], set_={"computed_at": now, "body": body})
    )
    session.commit()
    return json.loads(body)


def inbox_totals(session: Session, now: float, period: float) -> dict[str, Any]:
    """Events stored by (source, type) and by status: whole-inbox counts, shared by the
    deployment (``shared``), so they lag by up to ``period`` seconds."""

    def compute() -> dict[str, Any]:
        received = [
            [source, event_type, int(count)]
            for source, event_type, count in session.execute(
                select(StripeEvent.source, StripeEvent.type, func.count()).group_by(
                    StripeEvent.source, StripeEvent.type
                )
            )
        ]
        by_status = {
            str(status): int(count)
            for status, count in session.execute(
                select(StripeEvent.status, func.count()).group_by(StripeEvent.status)
            )
        }
        return {"received": received, "by_status": by_status}

    return cast(dict[str, Any], shared(session, "webhook_inbox_totals", now, period, compute))


def webhook_families(session: Session, now: float, period: float = 0.0) -> list[Metric]:
    """The webhook inbox and rejections log as metrics."""
    by_status: dict[str, int] = dict.fromkeys(("pending", "processed", "failed", "ignored"), 0)
    received = _counter(
        "paydesk_webhook_events_received",
        "Stripe events stored, by source (webhook, backfill) and event type.",
        ["source", "type"],
    )
    totals = inbox_totals(session, now, period)
    for source, event_type, count in totals["received"]:
        received.add_metric([source, event_type], count)
    by_status.update(totals["by_status"])
    # The small sets, by index, on every scrape: they are what alerts watch.
    for status in ("pending", "failed"):
        by_status[status] = int(
            session.scalar(select(func.count()).where(StripeEvent.status == status)) or 0
        )
    processed = _counter("paydesk_webhook_events_processed", "Stripe events applied.")
    processed.add_metric([], by_status["processed"])
    ignored = _counter("paydesk_webhook_events_ignored", "Stripe events of unhandled types.")
    ignored.add_metric([], by_status["ignored"])
    failed = GaugeMetricFamily(
        "paydesk_webhook_events_failed",
        "Stripe events parked after their last attempt failed (replay brings them back).",
    )
    failed.add_metric([], by_status["failed"])
    backlog = GaugeMetricFamily(
        "paydesk_webhook_backlog_events", "Stripe events stored and not yet applied."
    )
    backlog.add_metric([], by_status["pending"])
    retrying = GaugeMetricFamily(
        "paydesk_webhook_events_retrying", "Pending Stripe events that failed at least once."
    )
    retrying.add_metric(
        [],
        session.scalar(
            select(func.count()).where(StripeEvent.status == "pending", StripeEvent.attempts > 0)
        )
        or 0,
    )
    oldest = session.scalar(
        select(func.min(StripeEvent.created)).where(StripeEvent.status == "pending")
    )
    oldest_age = GaugeMetricFamily(
        "paydesk_webhook_oldest_pending_age_seconds",
        "Age (since Stripe created it) of the oldest event not yet applied; 0 when none.",
    )
    oldest_age.add_metric([], max(0.0, now - oldest) if oldest is not None else 0.0)
    recent = session.execute(
        select(StripeEvent.created, StripeEvent.processed_at).where(
            StripeEvent.status == "processed",
            StripeEvent.processed_at >= datetime.fromtimestamp(now, UTC) - LAG_WINDOW,
        )
    ).all()
    lags = [processed_at.timestamp() - created for created, processed_at in recent if processed_at]
    lag = GaugeMetricFamily(
        "paydesk_webhook_processing_lag_seconds",
        "Largest delay from an event's creation at Stripe to its application, among events "
        "applied in the last 5 minutes; 0 when none.",
    )
    lag.add_metric([], max([0.0, *lags]))
    rejections = _counter(
        "paydesk_webhook_rejections", "Webhook deliveries refused, by reason.", ["reason"]
    )
    for reason, count in session.execute(
        select(
            WebhookRejection.reason, func.coalesce(func.sum(WebhookRejection.count), 0)
        ).group_by(WebhookRejection.reason)
    ):
        rejections.add_metric([reason], int(count))
    return [received, processed, ignored, failed, backlog, retrying, oldest_age, lag, rejections]


SIGN_IN_FAILURE_WINDOW = timedelta(minutes=15)


def access_families(session: Session, now: float) -> list[Metric]:
    """Failed admin sign-ins of the last 15 minutes (the audit log, ``at`` indexed)."""
    since = datetime.fromtimestamp(now, UTC) - SIGN_IN_FAILURE_WINDOW
    failures = session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(
            AuditEntry.at >= since,
            AuditEntry.action == "auth.sign_in",
            AuditEntry.outcome == "failure",
        )
    )
    gauge = GaugeMetricFamily(
        "paydesk_admin_sign_in_failures_15m",
        "Failed admin sign-ins (password or second factor) in the last 15 minutes.",
    )
    gauge.add_metric([], int(failures or 0))
    return [gauge]


def mirror_families(session: Session, now: float) -> list[Metric]:
    """Payments, refunds, disputes, subscriptions and the business gauges."""
    payments = _counter(
        "paydesk_payments",
        "Payments created, and those that succeeded.",
        ["currency", "outcome"],
    )
    # A gauge, not a counter: a declined intent retried to success leaves this set,
    # and a counter going down would read as a reset (a spike in increase()).
    failed_now = GaugeMetricFamily(
        "paydesk_payments_failed",
        "Payments whose last attempt failed (declined, errored) and that never succeeded; "
        "use delta(), not increase().",
        labels=["currency"],
    )
    received = _counter(
        "paydesk_payments_received_minor_units",
        "Amount received by succeeded payments, in the currency's minor units.",
        ["currency"],
    )
    refunds = _counter("paydesk_refunds", "Refunds created.", ["currency"])
    refunded = _counter(
        "paydesk_refunded_minor_units", "Amount of succeeded refunds, minor units.", ["currency"]
    )
    # From the daily rollups: a few hundred rows per currency, not every payment.
    for currency, n_created, succeeded, failed, amount, n_refunds, refund_amount in session.execute(
        select(
            DailyRollup.currency,
            func.sum(DailyRollup.payments_created),
            func.sum(DailyRollup.payments_succeeded),
            func.sum(DailyRollup.payments_failed),
            func.sum(DailyRollup.payments_volume),
            func.sum(DailyRollup.refunds_created),
            func.sum(DailyRollup.refunds_amount),
        ).group_by(DailyRollup.currency)
    ):
        payments.add_metric([currency, "created"], int(n_created or 0))
        payments.add_metric([currency, "succeeded"], int(succeeded or 0))
        failed_now.add_metric([currency], int(failed or 0))
        received.add_metric([currency], int(amount or 0))
        refunds.add_metric([currency], int(n_refunds or 0))
        refunded.add_metric([currency], int(refund_amount or 0))

    disputes = _counter("paydesk_disputes", "Disputes opened.", ["currency"])
    open_disputes = GaugeMetricFamily(
        "paydesk_disputes_open", "Disputes not closed yet.", labels=["currency"]
    )
    for currency, count, still_open in session.execute(
        select(
            Dispute.currency,
            func.count(),
            func.count().filter(Dispute.status.not_in(_DISPUTE_CLOSED)),
        ).group_by(Dispute.currency)
    ):
        disputes.add_metric([currency], count)
        open_disputes.add_metric([currency], still_open)

    created = _counter("paydesk_subscriptions_created", "Subscriptions created.", ["tier"])
    canceled = _counter(
        "paydesk_subscriptions_canceled",
        "Subscriptions canceled (at once or at period end) or ended.",
        ["tier"],
    )
    current = GaugeMetricFamily(
        "paydesk_subscriptions", "Subscriptions by tier and status.", labels=["tier", "status"]
    )
    # From subscription_daily: rows per tier, status and day, not every subscription.
    totals: dict[str, list[int]] = {}
    for tier_key, status, count, cancels in session.execute(
        select(
            SubscriptionDaily.tier,
            SubscriptionDaily.status,
            func.sum(SubscriptionDaily.subscriptions),
            func.sum(SubscriptionDaily.canceled),
        ).group_by(SubscriptionDaily.tier, SubscriptionDaily.status)
    ):
        if not count:
            continue
        total = totals.setdefault(tier_key, [0, 0])
        total[0] += int(count)
        total[1] += int(cancels or 0)
        current.add_metric([tier_key, status], int(count))
    for tier_key, (total_created, total_canceled) in sorted(totals.items()):
        created.add_metric([tier_key], total_created)
        canceled.add_metric([tier_key], total_canceled)
    return [
        payments,
        failed_now,
        received,
        refunds,
        refunded,
        disputes,
        open_disputes,
        created,
        canceled,
        current,
    ]


def currencies_of(session: Session) -> set[str]:
    """Every currency of a payment or a subscription (each has a daily rollup row)."""
    return set(session.scalars(select(DailyRollup.currency).distinct()).all())


def business_figures(session: Session, now: float, currencies: set[str]) -> dict[str, Any]:
    """The business figures of docs/METRICS.md per currency, as JSON-able numbers."""
    end = int(now) + 1  # "now" includes this second
    day_ago = end - int(RATIO_WINDOW.total_seconds())
    month_ago = end - int(CHURN_WINDOW.total_seconds())
    figures: dict[str, Any] = {}
    for currency in sorted(currencies):
        moves = mrr_movements(session, month_ago, end, currency)
        pay = payment_metrics(session, day_ago, end, currency)
        refund_rate = refund_metrics(session, day_ago, end, currency, payments=pay).refund_rate

        def number(value: Any) -> float | None:
            return None if value is None else float(value)

        figures[currency] = {
            "mrr": round_minor(moves.mrr_end),
            "paying": moves.customers_end,
            "subscriber_churn": number(moves.subscriber_churn_rate),
            "revenue_churn": number(moves.revenue_churn_rate),
            "success": number(pay.success_rate),
            "average": None if pay.average_value is None else round_minor(pay.average_value),
            "refund": number(refund_rate),
        }
    return figures


def business_families(session: Session, now: float, currencies: set[str]) -> list[Metric]:
    """The business figures of docs/METRICS.md as gauges, per currency."""
    return business_families_of(business_figures(session, now, currencies))


def business_families_of(figures: dict[str, Any]) -> list[Metric]:
    """Gauges of figures from ``business_figures`` (possibly read back from a snapshot)."""
    mrr = GaugeMetricFamily(
        "paydesk_mrr_minor_units",
        "Monthly recurring revenue now (free tier excluded), minor units per month.",
        labels=["currency"],
    )
    paying = GaugeMetricFamily(
        "paydesk_paying_customers", "Customers with a paid subscription.", labels=["currency"]
    )
    success = GaugeMetricFamily(
        "paydesk_payment_success_ratio",
        "Succeeded / (succeeded + failed) payments created in the last 24 hours.",
        labels=["currency"],
    )
    average = GaugeMetricFamily(
        "paydesk_payment_average_value_minor_units",
        "Average received by succeeded payments created in the last 24 hours.",
        labels=["currency"],
    )
    refund_ratio = GaugeMetricFamily(
        "paydesk_refund_ratio",
        "Succeeded refunds / succeeded payments, both created in the last 24 hours.",
        labels=["currency"],
    )
    subscriber_churn = GaugeMetricFamily(
        "paydesk_subscriber_churn_ratio",
        "Paying customers 30 days ago who pay nothing now, over paying customers then.",
        labels=["currency"],
    )
    revenue_churn = GaugeMetricFamily(
        "paydesk_revenue_churn_ratio",
        "(Churned + contracted MRR) over the last 30 days / MRR 30 days ago.",
        labels=["currency"],
    )
    gauges = {
        "mrr": mrr,
        "paying": paying,
        "subscriber_churn": subscriber_churn,
        "revenue_churn": revenue_churn,
        "success": success,
        "average": average,
        "refund": refund_ratio,
    }
    for currency, values in sorted(figures.items()):
        for key, gauge in gauges.items():
            if values.get(key) is not None:
                gauge.add_metric([currency], values[key])
    return [mrr, paying, success, average, refund_ratio, subscriber_churn, revenue_churn]
