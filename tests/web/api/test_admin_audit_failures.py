"""Failed and refused Admin API mutations leave an audit entry of their own.

Driven over real HTTP against the sandbox: a refund of more than was paid (the
payment is re-read from the sandbox first), a declined card, a cancellation of an
already canceled subscription, a role without the permission. Each leaves an
``outcome = "failure"`` entry naming the error code, written in its own transaction
(the failed work itself is rolled back, or for a decline committed), and the hash
chain still verifies.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from paydesk.auth import audit
from paydesk.db.models import AuditEntry, Refund
from paydesk.web import create_app
from tests.support.admins import make_admin, make_token
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack

# What a failure entry may keep: codes and ids, never a message or card data.
ALLOWED_KEYS = {"error", "field", "via", "stripe_request_id", "decline_code", "payment_intent"}
ALLOWED_KEYS |= {"payment"}


@pytest.fixture
def customer_id(api: httpx.Client) -> str:
    response = api.post("/api/admin/customers", json={"user_id": "af-1", "email": "af@example.com"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def failures(api: httpx.Client, action: str) -> list[dict[str, Any]]:
    response = api.get("/api/admin/audit", params={"action": action, "outcome": "failure"})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    for row in rows:
        assert row["outcome"] == "failure"
        assert set(json.loads(row["after"])) <= ALLOWED_KEYS, row["after"]
    return rows


def paid(api: httpx.Client, customer: str, amount: int = 3000) -> str:
    response = api.post(
        "/api/admin/payments",
        json={
            "customer": customer,
            "amount": amount,
            "currency": "usd",
            "payment_method": "pm_card_visa",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["payment"]["id"])


def test_refund_of_more_than_was_paid_is_audited_as_a_failure(
    api: httpx.Client, stack: Stack, customer_id: str
) -> None:
    payment = paid(api, customer_id)
    assert failures(api, "refund.create") == []
    refused = api.post(f"/api/admin/payments/{payment}/refunds", json={"amount": 3001})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "amount_too_large"
    [entry] = failures(api, "refund.create")
    assert entry["target"] == payment
    assert entry["actor"] == "admin@paydesk.test"
    assert json.loads(entry["after"]) == {
        "error": "amount_too_large",
        "field": "amount",
        "via": "api",
    }
    # The refusal made nothing: no refund, no success entry.
    assert stack.sdk.v1.refunds.list({"payment_intent": payment}).data == []
    with stack.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Refund)) == 0
        successes = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "refund.create", AuditEntry.outcome == "success"
            )
        ).all()
        assert successes == []
        assert audit.verify(session, stack.settings).ok
    # A refund that goes through after it is audited as a success, chained on.
    ok = api.post(f"/api/admin/payments/{payment}/refunds", json={"amount": 3000})
    assert ok.status_code == 201, ok.text
    listed = api.get("/api/admin/audit", params={"action": "refund.create"}).json()
    assert [row["outcome"] for row in listed] == ["success", "failure"]
    with stack.sessions() as session:
        assert audit.verify(session, stack.settings).ok


def test_refund_of_a_refunded_payment_is_audited(api: httpx.Client, customer_id: str) -> None:
    payment = paid(api, customer_id)
    assert api.post(f"/api/admin/payments/{payment}/refunds", json={}).status_code == 201
    again = api.post(f"/api/admin/payments/{payment}/refunds", json={})
    assert again.status_code == 409
    [entry] = failures(api, "refund.create")
    assert json.loads(entry["after"])["error"] == "already_refunded"


def test_declined_payment_is_audited_and_still_mirrored(
    api: httpx.Client, customer_id: str
) -> None:
    declined = api.post(
        "/api/admin/payments",
        json={
            "customer": customer_id,
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_visa_chargeDeclinedInsufficientFunds",
        },
    )
    assert declined.status_code == 402, declined.text
    [entry] = failures(api, "payment.create")
    after = json.loads(entry["after"])
    assert (after["error"], after["decline_code"]) == ("card_declined", "insufficient_funds")
    assert after["stripe_request_id"].startswith("req_")
    assert after["via"] == "api"
    # The declined attempt is still committed (it counts in the failure rate).
    listed = api.get("/api/admin/payments", params={"customer": customer_id}).json()["data"]
    assert [p["status"] for p in listed] == ["requires_payment_method"]
    assert "4242" not in entry["after"]
    assert "pm_card" not in entry["after"]


def test_refused_cancellation_is_audited(api: httpx.Client, customer_id: str) -> None:
    created = api.post(
        "/api/admin/subscriptions",
        json={"customer": customer_id, "tier": "premium", "payment_method": "pm_card_visa"},
    )
    assert created.status_code == 201, created.text
    sid = created.json()["subscription"]["id"]
    assert api.post(f"/api/admin/subscriptions/{sid}/cancel", json={}).status_code == 200
    again = api.post(f"/api/admin/subscriptions/{sid}/cancel", json={})
    assert again.status_code == 409, again.text
    [entry] = failures(api, "subscription.cancel")
    assert entry["target"] == sid
    assert json.loads(entry["after"]) == {"error": "subscription_ended", "via": "api"}
    successes = api.get(
        "/api/admin/audit", params={"action": "subscription.cancel", "outcome": "success"}
    ).json()
    assert len(successes) == 1


def test_permission_refusals_and_bad_input_are_audited(
    api: httpx.Client, stack: Stack, customer_id: str
) -> None:
    payment = paid(api, customer_id)
    viewer = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
    token = make_token(stack.sessions, stack.settings, viewer)
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        headers = {"Authorization": f"Bearer {token}"}
        refused = httpx.post(
            f"{base}/api/admin/payments/{payment}/refunds", json={}, headers=headers, timeout=30
        )
        assert refused.status_code == 403
        revoke = httpx.delete(f"{base}/api/admin/tokens/999999", headers=headers, timeout=30)
        assert revoke.status_code == 404
        # A read that is refused is not a mutation: not audited as one.
        assert httpx.get(f"{base}/api/admin/audit", headers=headers, timeout=30).status_code == 403
        # No token at all: nobody to name, nothing recorded (sign-in is audited elsewhere).
        anonymous = httpx.post(f"{base}/api/admin/payments/{payment}/refunds", json={}, timeout=30)
        assert anonymous.status_code == 401
    [denied] = failures(api, "refund.create")
    assert (denied["actor"], denied["target"]) == (viewer.email, payment)
    assert json.loads(denied["after"]) == {"error": "permission_denied", "via": "api"}
    [missing] = failures(api, "token.revoke")
    assert (missing["actor"], missing["target"]) == (viewer.email, "token:999999")
    assert json.loads(missing["after"])["error"] == "token_not_found"
    # Malformed input (refused by validation before any service) is a failure too.
    bad = api.post(f"/api/admin/payments/{payment}/refunds", json={"amount": "lots"})
    assert bad.status_code == 422
    entries = failures(api, "refund.create")
    assert json.loads(entries[0]["after"]) == {"error": "invalid_input", "via": "api"}
    assert api.get("/api/admin/audit", params={"outcome": "maybe"}).status_code == 422


def test_failures_only_filter_of_the_csv_export(api: httpx.Client, customer_id: str) -> None:
    payment = paid(api, customer_id)
    api.post(f"/api/admin/payments/{payment}/refunds", json={"amount": 999_999})
    exported = api.get("/api/admin/audit", params={"format": "csv", "outcome": "failure"})
    assert exported.status_code == 200
    lines = exported.text.strip().splitlines()
    assert len(lines) == 2, lines
    assert ",refund.create," in lines[1]
    assert ",failure," in lines[1]
