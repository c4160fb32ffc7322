"""The Admin API over real HTTP, against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paydesk.settings import load_settings
from paydesk.web import create_app
from tests.support.admins import admin_token
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack, stack_environment


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    return error


@pytest.fixture
def customer_id(api: httpx.Client) -> str:
    response = api.post("/api/admin/customers", json={"user_id": "u-1", "email": "ada@example.com"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def pay(
    api: httpx.Client, customer: str, pm: str, amount: int = 2000, **extra: Any
) -> httpx.Response:
    body = {
        "customer": customer,
        "amount": amount,
        "currency": "usd",
        "payment_method": pm,
        **extra,
    }
    return api.post("/api/admin/payments", json=body, headers={"Idempotency-Key": f"{pm}-{amount}"})


def test_customer_is_created_once_per_user(api: httpx.Client, customer_id: str) -> None:
    again = api.post("/api/admin/customers", json={"user_id": "u-1"})
    assert again.json()["id"] == customer_id
    listed = api.get("/api/admin/customers", params={"email": "ada@example.com"}).json()
    assert [c["id"] for c in listed["data"]] == [customer_id]
    assert api.get(f"/api/admin/customers/{customer_id}").json()["user_id"] == "u-1"
    assert error_of(api.get("/api/admin/customers/cus_nope"), 404)["code"] == "customer_not_found"


def test_payment_outcomes(api: httpx.Client, customer_id: str) -> None:
    ok = pay(api, customer_id, "pm_card_visa")
    assert ok.status_code == 200, ok.text
    assert ok.json()["payment"]["status"] == "succeeded"
    assert ok.json()["payment"]["card_last4"] == "4242"

    declined = error_of(pay(api, customer_id, "pm_card_visa_chargeDeclinedInsufficientFunds"), 402)
    assert (declined["code"], declined["decline_code"]) == ("card_declined", "insufficient_funds")
    assert declined["stripe_request_id"].startswith("req_")

    three_ds = pay(api, customer_id, "pm_card_threeDSecure2Required", return_url="https://x.test/r")
    assert three_ds.status_code == 200
    body = three_ds.json()
    assert body["payment"]["status"] == "requires_action"
    assert body["client_secret"]
    assert body["next_action"]["type"] == "redirect_to_url"


def test_retried_request_with_same_key_is_one_payment(api: httpx.Client, customer_id: str) -> None:
    first = pay(api, customer_id, "pm_card_visa", 1234).json()["payment"]["id"]
    second = pay(api, customer_id, "pm_card_visa", 1234).json()["payment"]["id"]
    assert first == second
    listed = api.get("/api/admin/payments", params={"customer": customer_id}).json()
    assert [p["id"] for p in listed["data"]] == [first]


def test_refunds_through_the_api(api: httpx.Client, customer_id: str) -> None:
    payment = pay(api, customer_id, "pm_card_visa", 5000).json()["payment"]["id"]
    partial = api.post(
        f"/api/admin/payments/{payment}/refunds",
        json={"amount": 2000, "reason": "requested_by_customer", "note": "ticket 7"},
    )
    assert partial.status_code == 201, partial.text
    assert partial.json()["requested_by"] == "admin@paydesk.test"  # the token's owner
    too_much = error_of(
        api.post(f"/api/admin/payments/{payment}/refunds", json={"amount": 3001}), 422
    )
    assert (too_much["field"], too_much["code"]) == ("amount", "amount_too_large")
    bad_reason = error_of(
        api.post(f"/api/admin/payments/{payment}/refunds", json={"reason": "meh"}), 422
    )
    assert bad_reason["field"] == "reason"
    rest = api.post(f"/api/admin/payments/{payment}/refunds", json={})
    assert rest.json()["amount"] == 3000
    assert api.get(f"/api/admin/payments/{payment}").json()["amount_refunded"] == 5000
    assert len(api.get("/api/admin/refunds", params={"payment": payment}).json()["data"]) == 2

    declined = pay(api, customer_id, "pm_card_visa_chargeDeclined").json()["error"]["payment"]
    refused = error_of(api.post(f"/api/admin/payments/{declined}/refunds", json={}), 409)
    assert refused["code"] == "payment_declined"


def test_listing_filters_and_keyset_pagination(api: httpx.Client, customer_id: str) -> None:
    made = [
        pay(api, customer_id, "pm_card_visa", 1000 + i).json()["payment"]["id"] for i in range(5)
    ]
    pay(api, customer_id, "pm_card_visa_chargeDeclined")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"status": "succeeded", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/admin/payments", params=params).json()
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))
    by_email = api.get("/api/admin/payments", params={"q": "ada@example.com"}).json()["data"]
    assert len(by_email) == 6
    assert api.get("/api/admin/payments", params={"currency": "eur"}).json()["data"] == []
    assert (
        error_of(api.get("/api/admin/payments", params={"cursor": "!!"}), 422)["field"] == "cursor"
    )
    assert error_of(api.get("/api/admin/payments", params={"limit": 0}), 422)["field"] == "limit"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 10.5}, "amount"),
        ({"amount": "1000"}, "amount"),
        ({"currency": "dollars"}, "currency"),
        ({"payment_method": "4242424242424242"}, "payment_method"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_payment_input_names_the_field(
    api: httpx.Client, customer_id: str, body: dict[str, Any], field: str
) -> None:
    full = {"customer": customer_id, "amount": 1000, "currency": "usd", **body}
    error = error_of(api.post("/api/admin/payments", json=full), 422)
    assert error["field"] == field
    assert "4242424242424242" not in str(error)
    assert api.get("/api/admin/payments").json()["data"] == []


def test_subscription_lifecycle_through_the_api(api: httpx.Client, customer_id: str) -> None:
    created = api.post(
        "/api/admin/subscriptions",
        json={"customer": customer_id, "tier": "premium", "payment_method": "pm_card_visa"},
    )
    assert created.status_code == 201, created.text
    sub = created.json()["subscription"]
    assert (sub["status"], sub["tier"]) == ("active", "premium")
    sid = sub["id"]
    up = api.post(f"/api/admin/subscriptions/{sid}/tier", json={"tier": "enterprise"})
    assert up.json()["subscription"]["tier"] == "enterprise"
    down = api.post(f"/api/admin/subscriptions/{sid}/tier", json={"tier": "premium"})
    assert down.status_code == 200, down.text
    assert down.json()["subscription"]["tier"] == "premium"
    ending = api.post(f"/api/admin/subscriptions/{sid}/cancel", json={"at_period_end": True})
    assert ending.json()["subscription"]["cancel_at_period_end"] is True
    resumed = api.post(f"/api/admin/subscriptions/{sid}/resume")
    assert resumed.json()["subscription"]["cancel_at_period_end"] is False
    now = api.post(f"/api/admin/subscriptions/{sid}/cancel", json={})
    assert now.json()["subscription"]["status"] == "canceled"
    assert error_of(api.post(f"/api/admin/subscriptions/{sid}/resume"), 409)
    listed = api.get("/api/admin/subscriptions", params={"status": "canceled"}).json()["data"]
    assert [s["id"] for s in listed] == [sid]
    tiers = api.get("/api/admin/tiers").json()
    assert [(t["key"], t["price"]["amount"]) for t in tiers] == [
        ("free", 0), ("premium", 999), ("enterprise", 2999)
    ]  # fmt: skip
    assert tiers[1]["price"]["display"] == "9.99 USD"


def test_one_live_subscription_per_customer(api: httpx.Client, customer_id: str) -> None:
    first = api.post("/api/admin/subscriptions", json={"customer": customer_id, "tier": "free"})
    assert first.status_code == 201
    second = api.post("/api/admin/subscriptions", json={"customer": customer_id, "tier": "free"})
    assert error_of(second, 409)["code"] == "subscription_exists"


def test_admin_api_requires_a_token_in_every_environment(stack: Stack) -> None:
    env = stack_environment(stack.sandbox.url, stack.settings.database_url.get_secret_value())
    env.update({"PAYDESK_ENV": "staging", "PAYDESK_SECRET_KEY": "staging-secret-key-" + "s" * 24})
    staging = load_settings(env)
    token = admin_token(stack.sessions, staging, "viewer")
    with serve_in_thread(create_app(staging, engine=stack.engine)) as base:
        response = httpx.get(f"{base}/api/admin/payments")
        assert error_of(response, 401)["code"] == "token_required"
        bad = httpx.get(f"{base}/api/admin/payments", headers={"Authorization": "Bearer pdk_x"})
        assert error_of(bad, 401)["code"] == "invalid_token"
        ok = httpx.get(f"{base}/api/admin/payments", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200, ok.text


def test_stripe_not_configured_is_503(stack: Stack) -> None:
    bare = load_settings({"PAYDESK_DATABASE_URL": stack.settings.database_url.get_secret_value()})
    token = admin_token(stack.sessions, bare)
    with serve_in_thread(create_app(bare, engine=stack.engine)) as base:
        response = httpx.post(
            f"{base}/api/admin/customers",
            json={"user_id": "x"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert error_of(response, 503)["code"] == "stripe_not_configured"


def test_changes_are_committed_before_the_response(api: httpx.Client, stack: Stack) -> None:
    # Read straight after each answer through another connection: a commit that
    # ran after the response was sent would show up here as a missing row.
    from sqlalchemy import text

    for n in range(10):
        response = api.post("/api/admin/customers", json={"user_id": f"race-{n}"})
        assert response.status_code == 200
        with stack.engine.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM customers WHERE user_id = :u"), {"u": f"race-{n}"}
            ).scalar()
        assert found == 1
