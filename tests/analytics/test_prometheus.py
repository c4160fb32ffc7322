"""The metrics registry: Stripe API observations, the database collector's cache."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.orm import Session

from paydesk.analytics.prometheus import PaydeskMetrics, stripe_outcome
from paydesk.db.engine import create_engine, session_factory
from paydesk.db.migrate import upgrade_to_head
from paydesk.db.models import Refund, Subscription
from paydesk.stripe_gateway.http import StripeCall


def value(metrics: PaydeskMetrics, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_stripe_outcomes_are_bounded_labels() -> None:
    def call(status: int | None) -> StripeCall:
        return StripeCall("POST", "/v1/refunds", status, None, 0.01, None if status else "network")

    assert [stripe_outcome(call(s)) for s in (200, 402, 401, 403, 404, 429, 500, 503, None)] == [
        "success",
        "card_error",
        "auth_error",
        "auth_error",
        "client_error",
        "rate_limited",
        "server_error",
        "server_error",
        "network",
    ]


def test_stripe_calls_are_counted_and_timed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade_to_head(url)
    engine = create_engine(url)
    metrics = PaydeskMetrics(session_factory(engine))
    metrics.observe_stripe(StripeCall("POST", "/v1/payment_intents", 200, "req_1", 0.2))
    metrics.observe_stripe(StripeCall("POST", "/v1/payment_intents", 402, "req_2", 0.3))
    metrics.observe_stripe(StripeCall("GET", "/v1/customers/{id}", 500, "req_3", 3.0))
    route = {"method": "POST", "route": "/v1/payment_intents"}
    assert value(metrics, "paydesk_stripe_api_requests_total", **route, outcome="success") == 1
    assert value(metrics, "paydesk_stripe_api_requests_total", **route, outcome="card_error") == 1
    assert value(metrics, "paydesk_stripe_api_request_duration_seconds_count", **route) == 2
    assert value(metrics, "paydesk_stripe_api_request_duration_seconds_sum", **route) == 0.5
    slow = {"method": "GET", "route": "/v1/customers/{id}"}
    assert (
        value(metrics, "paydesk_stripe_api_request_duration_seconds_bucket", **slow, le="2.5") == 0
    )
    assert (
        value(metrics, "paydesk_stripe_api_request_duration_seconds_bucket", **slow, le="5.0") == 1
    )
    engine.dispose()


def test_database_figures_are_cached_for_the_configured_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade_to_head(url)
    engine = create_engine(url)
    now = [1_000.0]
    metrics = PaydeskMetrics(session_factory(engine), cache_seconds=10, clock=lambda: now[0])
    assert value(metrics, "paydesk_refunds_total", currency="eur") is None
    with Session(engine) as session:
        session.add(Refund(stripe_id="re_1", amount=300, currency="eur", status="succeeded"))
        session.commit()
    now[0] += 9
    assert value(metrics, "paydesk_refunds_total", currency="eur") is None  # still cached
    now[0] += 1
    assert value(metrics, "paydesk_refunds_total", currency="eur") == 1
    assert value(metrics, "paydesk_refunded_minor_units_total", currency="eur") == 300
    engine.dispose()


def test_a_database_outage_reports_database_down_not_a_failed_scrape() -> None:
    engine = create_engine("postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens
    metrics = PaydeskMetrics(session_factory(engine), cache_seconds=0)
    assert value(metrics, "paydesk_database_up") == 0
    assert value(metrics, "paydesk_build_info", version=__import__("paydesk").__version__) == 1
    engine.dispose()


def test_a_failing_family_is_that_familys_failure_not_database_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade_to_head(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE subscription_daily"))  # the mirror family's query fails
    metrics = PaydeskMetrics(session_factory(engine), cache_seconds=0)
    assert value(metrics, "paydesk_database_up") == 1
    assert value(metrics, "paydesk_metrics_family_up", family="mirror") == 0
    assert value(metrics, "paydesk_metrics_family_up", family="webhooks") == 1
    assert value(metrics, "paydesk_metrics_family_up", family="business") == 1
    assert value(metrics, "paydesk_webhook_backlog_events") == 0
    engine.dispose()


def test_a_database_never_migrated_is_up_with_every_family_failing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    metrics = PaydeskMetrics(session_factory(engine), cache_seconds=0)
    assert value(metrics, "paydesk_database_up") == 1
    for family in ("webhooks", "mirror", "business"):
        assert value(metrics, "paydesk_metrics_family_up", family=family) == 0
    engine.dispose()


def test_business_gauges_refresh_every_minute_at_most(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade_to_head(url)
    engine = create_engine(url)
    now = [2_000_000_000.0]
    metrics = PaydeskMetrics(session_factory(engine), cache_seconds=1, clock=lambda: now[0])
    assert value(metrics, "paydesk_mrr_minor_units", currency="usd") is None
    with Session(engine) as session:
        session.add(
            Subscription(
                stripe_id="sub_1", customer_id="cus_1", status="active", tier="premium",
                unit_amount=999, currency="usd", stripe_created=int(now[0]) - 100,
            )
        )  # fmt: skip
        session.commit()
    now[0] += 30
    assert value(metrics, "paydesk_subscriptions_created_total", tier="premium") == 1
    assert value(metrics, "paydesk_mrr_minor_units", currency="usd") is None  # not yet
    now[0] += 30
    assert value(metrics, "paydesk_mrr_minor_units", currency="usd") == 999
    assert value(metrics, "paydesk_paying_customers", currency="usd") == 1
    engine.dispose()


def test_whole_inbox_counts_are_computed_once_per_period_for_the_deployment(
    tmp_path: Path,
) -> None:
    from paydesk.db.models import StripeEvent

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade_to_head(url)
    engine = create_engine(url)
    now = [2_000_000_000.0]
    # Two API pods: two collectors on one database, each with its own in-process cache.
    pods = [
        PaydeskMetrics(session_factory(engine), cache_seconds=1, clock=lambda: now[0])
        for _ in range(2)
    ]

    def store(event_id: str) -> None:
        with Session(engine) as session:
            session.add(
                StripeEvent(
                    event_id=event_id, type="invoice.paid", created=int(now[0]),
                    object_id="in_1", status="processed", payload="{}",
                )
            )  # fmt: skip
            session.commit()

    store("evt_1")
    received = {"source": "webhook", "type": "invoice.paid"}
    assert value(pods[0], "paydesk_webhook_events_received_total", **received) == 1
    store("evt_2")
    now[0] += 2  # past the in-process cache, within the shared period (6 s)
    assert value(pods[1], "paydesk_webhook_events_received_total", **received) == 1
    assert value(pods[1], "paydesk_webhook_events_processed_total") == 1
    now[0] += 6
    assert value(pods[1], "paydesk_webhook_events_received_total", **received) == 2
    assert value(pods[0], "paydesk_webhook_events_processed_total") == 2
    engine.dispose()


def test_business_gauges_are_computed_once_per_period_for_the_deployment(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade_to_head(url)
    engine = create_engine(url)
    now = [2_000_000_000.0]
    pods = [
        PaydeskMetrics(session_factory(engine), cache_seconds=1, clock=lambda: now[0])
        for _ in range(2)
    ]

    def subscribe(sub_id: str, customer: str) -> None:
        with Session(engine) as session:
            session.add(
                Subscription(
                    stripe_id=sub_id, customer_id=customer, status="active", tier="premium",
                    unit_amount=999, currency="usd", stripe_created=int(now[0]) - 100,
                )
            )  # fmt: skip
            session.commit()

    subscribe("sub_1", "cus_1")
    assert value(pods[0], "paydesk_mrr_minor_units", currency="usd") == 999
    subscribe("sub_2", "cus_2")
    # The other pod's first scrape serves the deployment's figures of this minute.
    assert value(pods[1], "paydesk_mrr_minor_units", currency="usd") == 999
    now[0] += 60
    assert value(pods[1], "paydesk_mrr_minor_units", currency="usd") == 1998
    assert value(pods[1], "paydesk_paying_customers", currency="usd") == 2
    engine.dispose()
