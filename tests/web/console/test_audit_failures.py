"""Failed and refused console actions leave an audit entry the audit page shows.

A refund of more than was paid (the payment is re-read from the sandbox over real
HTTP first), a cancellation of an ended subscription and a role without the
permission each leave an ``outcome = "failure"`` entry with the error code; the
audit page filters on the outcome and marks failures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
from sqlalchemy import select

from paydesk.auth import audit
from paydesk.db.models import AuditEntry
from tests.support.admins import make_admin, make_token
from tests.support.stack import Stack

Console = Callable[[str], tuple[httpx.Client, str]]


def seeded(stack: Stack, base_url: str) -> dict[str, str]:
    """A paid payment and a canceled subscription, made through the Admin API."""
    admin = make_admin(stack.sessions, stack.settings, "admin", email="seeder@paydesk.test")
    token = make_token(stack.sessions, stack.settings, admin)
    with httpx.Client(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        customer = api.post("/api/admin/customers", json={"user_id": "caf-1"}).json()["id"]
        payment = api.post(
            "/api/admin/payments",
            json={
                "customer": customer,
                "amount": 2500,
                "currency": "usd",
                "payment_method": "pm_card_visa",
            },
        ).json()["payment"]["id"]
        sub = api.post(
            "/api/admin/subscriptions",
            json={"customer": customer, "tier": "premium", "payment_method": "pm_card_visa"},
        ).json()["subscription"]["id"]
        assert api.post(f"/api/admin/subscriptions/{sub}/cancel", json={}).status_code == 200
    return {"payment": payment, "subscription": sub}


def failure_entries(stack: Stack, action: str) -> list[AuditEntry]:
    with stack.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == action, AuditEntry.outcome == "failure")
                .order_by(AuditEntry.id)
            )
        )


def test_refused_console_actions_are_audited_and_shown(
    stack: Stack, base_url: str, console_as: Console
) -> None:
    ids = seeded(stack, base_url)
    client, token = console_as("finance")
    refund = client.post(
        f"/admin/payments/{ids['payment']}/refund",
        data={"csrf_token": token, "amount": "25.01", "confirm": "yes", "form_key": "k1"},
    )
    assert refund.status_code == 422, refund.text
    assert "amount_too_large" in refund.text
    [entry] = failure_entries(stack, "refund.create")
    assert (entry.actor, entry.target) == ("finance@paydesk.test", ids["payment"])
    assert json.loads(entry.after or "") == {
        "error": "amount_too_large",
        "field": "amount",
        "via": "console",
    }
    assert stack.sdk.v1.refunds.list({"payment_intent": ids["payment"]}).data == []

    cancel = client.post(
        f"/admin/subscriptions/{ids['subscription']}/cancel",
        data={"csrf_token": token, "when": "now", "confirm": "yes"},
    )
    assert cancel.status_code == 409
    [ended] = failure_entries(stack, "subscription.cancel")
    assert json.loads(ended.after or "")["error"] == "subscription_ended"

    # A role without the permission: refused, and the refusal is on record.
    viewer, viewer_token = console_as("viewer")
    denied = viewer.post(
        f"/admin/payments/{ids['payment']}/refund",
        data={"csrf_token": viewer_token, "amount": "1.00", "confirm": "yes"},
    )
    assert denied.status_code == 403
    entries = failure_entries(stack, "refund.create")
    assert [(e.actor, json.loads(e.after or "")["error"]) for e in entries] == [
        ("finance@paydesk.test", "amount_too_large"),
        ("viewer@paydesk.test", "permission_denied"),
    ]
    # A form refused for its CSRF token is not attributed to the action.
    forged = client.post(
        f"/admin/payments/{ids['payment']}/refund",
        data={"csrf_token": "forged", "amount": "1.00", "confirm": "yes"},
    )
    assert forged.status_code == 403
    assert len(failure_entries(stack, "refund.create")) == 2

    # The audit page: failures only, marked as such.
    page = client.get("/admin/audit", params={"outcome": "failure"})
    assert page.status_code == 200
    rows = re.findall(r'<tr id="audit-\d+">(.*?)</tr>', page.text, re.S)
    assert len(rows) == 3
    assert all('class="outcome outcome-failure">failure<' in row for row in rows)
    assert "amount_too_large" in page.text
    assert 'option value="failure" selected' in page.text
    everything = client.get("/admin/audit").text
    assert "outcome-success" in everything
    exported = client.get("/admin/audit.csv", params={"outcome": "failure"}).text
    assert len(exported.strip().splitlines()) == 1 + 3
    with stack.sessions() as session:
        assert audit.verify(session, stack.settings).ok
