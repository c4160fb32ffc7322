"""The endpoint over real HTTP: verify, store once, commit, then 2xx; refuse and record."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from paydesk.db.models import StripeEvent, WebhookRejection
from paydesk.web.api.webhooks import MAX_BODY_BYTES
from tests.webhooks.support import (
    OLD_SECRET,
    SECRET,
    deliver,
    event_dict,
    payment_intent,
    served,
    settings_for,
    signed,
)

ENDPOINT = "/api/webhooks/stripe"


def stored(engine: Engine) -> list[StripeEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(StripeEvent).order_by(StripeEvent.id)))


def rejections(engine: Engine) -> list[WebhookRejection]:
    with Session(engine) as session:
        return list(session.scalars(select(WebhookRejection).order_by(WebhookRejection.id)))


def test_valid_event_is_stored_then_acknowledged(engine: Engine, migrated_url: str) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent("pi_stored"))
    with served(settings_for(migrated_url)) as client:
        response = deliver(client, event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    rows = stored(engine)
    assert [(row.event_id, row.type, row.status, row.object_id) for row in rows] == [
        (event["id"], "payment_intent.succeeded", "pending", "pi_stored")
    ]
    # The payload is kept verbatim.
    assert orjson.loads(rows[0].payload) == event


def test_duplicate_delivery_is_acknowledged_without_a_second_row(
    engine: Engine, migrated_url: str
) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent())
    with served(settings_for(migrated_url)) as client:
        first = deliver(client, event)
        second = deliver(client, event)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["duplicate"] is True
    assert len(stored(engine)) == 1


def test_concurrent_deliveries_are_all_stored_once(engine: Engine, migrated_url: str) -> None:
    events = [
        event_dict("customer.created", {"id": f"cus_{i}", "object": "customer"}) for i in range(60)
    ]
    deliveries = events + events[:20]
    with served(settings_for(migrated_url)) as client, ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda event: deliver(client, event).status_code, deliveries))
    assert statuses == [200] * len(deliveries)
    assert sorted(row.event_id for row in stored(engine)) == sorted(e["id"] for e in events)


@pytest.mark.parametrize(
    ("make_headers", "reason"),
    [
        (lambda body: {}, "signature_missing"),
        (lambda body: {"Stripe-Signature": "garbage"}, "signature_malformed"),
        (lambda body: signed_headers(body, "whsec_" + "x" * 32), "signature_invalid"),
        (
            lambda body: signed_headers(body, SECRET, int(time.time()) - 301),
            "signature_expired",
        ),
    ],
    ids=["missing", "malformed", "wrong-secret", "expired"],
)
def test_bad_signature_is_refused_not_stored_and_recorded(
    engine: Engine, migrated_url: str, make_headers: object, reason: str
) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent())
    body = orjson.dumps(event)
    assert callable(make_headers)
    with served(settings_for(migrated_url)) as client:
        response = client.post(ENDPOINT, content=body, headers=make_headers(body))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == reason
    assert error["request_id"].startswith("req_")
    assert stored(engine) == []
    recorded = rejections(engine)
    assert [(row.reason, row.source_address, row.body_bytes) for row in recorded] == [
        (reason, "127.0.0.1", len(body))
    ]


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    from paydesk.stripe_gateway.webhook_signature import sign_payload

    return {"Stripe-Signature": sign_payload(body.decode(), secret, timestamp)}


def test_signature_within_tolerance_is_accepted(engine: Engine, migrated_url: str) -> None:
    event = event_dict("payment_intent.succeeded", payment_intent())
    with served(settings_for(migrated_url)) as client:
        response = deliver(client, event, timestamp=int(time.time()) - 290)
    assert response.status_code == 200
    assert len(stored(engine)) == 1


def test_rotated_secrets_are_all_accepted(engine: Engine, migrated_url: str) -> None:
    old = event_dict("customer.created", {"id": "cus_old", "object": "customer"})
    new = event_dict("customer.created", {"id": "cus_new", "object": "customer"})
    with served(settings_for(migrated_url, SECRET, OLD_SECRET)) as client:
        assert deliver(client, old, secret=OLD_SECRET).status_code == 200
        assert deliver(client, new, secret=SECRET).status_code == 200
    assert {row.object_id for row in stored(engine)} == {"cus_old", "cus_new"}


def test_after_rotation_the_retired_secret_is_refused(engine: Engine, migrated_url: str) -> None:
    event = event_dict("customer.created", {"id": "cus_x", "object": "customer"})
    with served(settings_for(migrated_url, SECRET)) as client:
        response = deliver(client, event, secret=OLD_SECRET)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_invalid"
    assert stored(engine) == []


def test_header_with_several_v1_signatures_matches_any(engine: Engine, migrated_url: str) -> None:
    event = event_dict("customer.created", {"id": "cus_multi", "object": "customer"})
    body, headers = signed(event)
    wrong = signed(event, secret=OLD_SECRET)[1]["Stripe-Signature"].split(",")[1]
    headers["Stripe-Signature"] = headers["Stripe-Signature"].replace(",", f",{wrong},", 1)
    with served(settings_for(migrated_url)) as client:
        response = client.post(ENDPOINT, content=body, headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"object": "list", "data": []}', b'{"id": "evt_1", "object": "event"}'],
    ids=["not-json", "not-an-event", "incomplete-event"],
)
def test_signed_body_that_is_not_an_event_is_refused(
    engine: Engine, migrated_url: str, body: bytes
) -> None:
    with served(settings_for(migrated_url)) as client:
        response = client.post(ENDPOINT, content=body, headers=signed_headers(body, SECRET))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_an_event"
    assert stored(engine) == []
    assert [row.reason for row in rejections(engine)] == ["not_an_event"]


def test_oversized_body_is_refused_and_recorded(engine: Engine, migrated_url: str) -> None:
    event = event_dict(
        "customer.created",
        {"id": "cus_big", "object": "customer", "description": "x" * MAX_BODY_BYTES},
    )
    with served(settings_for(migrated_url)) as client:
        response = deliver(client, event)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "payload_too_large"
    assert stored(engine) == []
    assert [row.reason for row in rejections(engine)] == ["payload_too_large"]


def test_without_a_configured_secret_deliveries_get_503(migrated_url: str, engine: Engine) -> None:
    settings = settings_for(migrated_url).model_copy(update={"stripe_webhook_secrets": ()})
    event = event_dict("customer.created", {"id": "cus_y", "object": "customer"})
    with served(settings) as client:
        response = deliver(client, event)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "webhook_secret_missing"
    assert stored(engine) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_down_answers_503_so_stripe_retries() -> None:
    # A PostgreSQL URL whose port has nothing listening: the real driver fails to connect.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/paydesk"
    event = event_dict("payment_intent.succeeded", payment_intent())
    with served(settings_for(url)) as client:
        response = deliver(client, event)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["error"]["code"] == "database_unavailable"


def test_sqlite_database_unusable_answers_503(tmp_path: object) -> None:
    # A database that was never migrated: the insert fails, nothing is acknowledged.
    url = f"sqlite:///{tmp_path}/empty.db"
    event = event_dict("payment_intent.succeeded", payment_intent())
    with served(settings_for(url)) as client:
        response = deliver(client, event)
    assert response.status_code == 503


def test_get_is_not_allowed(migrated_url: str) -> None:
    with served(settings_for(migrated_url)) as client:
        response = client.get(ENDPOINT)
    assert response.status_code == 405
    assert isinstance(response, httpx.Response)
