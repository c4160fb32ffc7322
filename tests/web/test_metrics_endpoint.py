"""/metrics: bearer token, 404 without one outside development, content from the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from paydesk.db.models import Payment, StripeEvent, WebhookRejection
from paydesk.settings import ConfigurationError, Settings, load_settings
from paydesk.web import create_app
from tests.support.servers import serve_in_thread

TOKEN = "metrics-token-for-tests-0123456789"


@contextmanager
def client_for(engine: Engine, **settings: object) -> Iterator[httpx.Client]:
    """A real Paydesk on loopback with these settings, and an HTTP client for it."""
    app = create_app(Settings(metrics_cache_seconds=1, **settings), engine=engine)  # type: ignore[arg-type]
    with serve_in_thread(app) as base, httpx.Client(base_url=base) as client:
        yield client


@pytest.fixture
def protected(engine: Engine) -> Iterator[httpx.Client]:
    with client_for(engine, env="staging", metrics_token=SecretStr(TOKEN)) as client:
        yield client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """name + sorted labels → value, for every sample of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_a_token_is_required_when_configured(protected: httpx.Client) -> None:
    missing = protected.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "authentication_required"
    wrong = protected.get("/metrics", headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
    assert wrong.status_code == 401
    basic = protected.get("/metrics", headers={"Authorization": "Basic " + TOKEN})
    assert basic.status_code == 401
    ok = protected.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert ("paydesk_database_up", ()) in samples(ok.text)


def test_without_a_token_metrics_exist_in_development_only(engine: Engine) -> None:
    for env in ("staging", "production"):
        with client_for(engine, env=env) as client:
            response = client.get("/metrics")
            assert response.status_code == 404, env
            assert response.json()["error"]["code"] == "not_found"
    with client_for(engine, env="development") as client:
        assert client.get("/metrics").status_code == 200


def test_token_setting_rules(tmp_path: object) -> None:
    with pytest.raises(ConfigurationError, match="PAYDESK_METRICS_TOKEN"):
        load_settings({"PAYDESK_METRICS_TOKEN": "short"})
    assert load_settings({"PAYDESK_METRICS_TOKEN": TOKEN}).metrics_token is not None


def test_figures_come_from_the_database(engine: Engine) -> None:
    with Session(engine) as session:
        session.add_all(
            [
                Payment(
                    stripe_id="pi_1",
                    amount=500,
                    currency="usd",
                    status="succeeded",
                    amount_received=500,
                    stripe_created=1,
                ),
                Payment(
                    stripe_id="pi_2",
                    amount=700,
                    currency="usd",
                    status="requires_payment_method",
                    failure_code="card_declined",
                    stripe_created=2,
                ),
                StripeEvent(
                    event_id="evt_1",
                    type="payment_intent.succeeded",
                    created=1,
                    payload="{}",
                    status="pending",
                ),
                StripeEvent(
                    event_id="evt_2",
                    type="payment_intent.succeeded",
                    created=1,
                    payload="{}",
                    status="failed",
                    attempts=5,
                ),
                WebhookRejection(reason="bad_signature"),
                WebhookRejection(reason="bad_signature"),
            ]
        )
        session.commit()
    with client_for(engine, env="development") as client:
        got = samples(client.get("/metrics").text)
    usd = ("currency", "usd")
    assert got[("paydesk_payments_total", (usd, ("outcome", "succeeded")))] == 1
    assert got[("paydesk_payments_failed", (usd,))] == 1
    assert got[("paydesk_payments_total", (usd, ("outcome", "created")))] == 2
    assert got[("paydesk_payments_received_minor_units_total", (usd,))] == 500
    assert got[("paydesk_webhook_backlog_events", ())] == 1
    assert got[("paydesk_webhook_events_failed", ())] == 1
    received = (
        "paydesk_webhook_events_received_total",
        (("source", "webhook"), ("type", "payment_intent.succeeded")),
    )
    assert got[received] == 2
    assert got[("paydesk_webhook_rejections_total", (("reason", "bad_signature"),))] == 2
    assert got[("paydesk_webhook_oldest_pending_age_seconds", ())] > 1_000_000
    assert got[("paydesk_database_up", ())] == 1


def test_each_app_has_its_own_registry(engine: Engine) -> None:
    first = create_app(Settings(), engine=engine)
    second = create_app(Settings(), engine=engine)
    assert first.state.metrics.registry is not second.state.metrics.registry
