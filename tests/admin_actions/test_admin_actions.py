"""One path for audited admin actions: permission declared once, audit written once.

Driven through the Admin API over real HTTP against the sandbox, then through the
same functions directly: a success leaves exactly one success entry (with the state
before and after), a failure exactly one failure entry and no success entry, and a
refusal exactly one failure entry naming ``permission_denied``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from paydesk import admin_actions
from paydesk.admin_actions import Context
from paydesk.auth import roles
from paydesk.auth.accounts import Principal
from paydesk.db.models import AuditEntry
from paydesk.errors import NotFound, PermissionDenied
from tests.support.stack import Stack


@pytest.fixture
def customer_id(api: httpx.Client) -> str:
    response = api.post("/api/admin/customers", json={"user_id": "aa-1", "email": "aa@example.com"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def entries(api: httpx.Client, action: str) -> list[dict[str, Any]]:
    response = api.get("/api/admin/audit", params={"action": action})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_every_action_declares_a_permission_of_the_matrix() -> None:
    names = [action.name for action in admin_actions.ACTIONS]
    assert len(names) == len(set(names))
    for action in admin_actions.ACTIONS:
        assert action.permission in roles.MATRIX


def test_capture_and_cancel_are_audited_once_each_way(api: httpx.Client, customer_id: str) -> None:
    authorised = api.post(
        "/api/admin/payments",
        json={
            "customer": customer_id,
            "amount": 1500,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
        },
    )
    assert authorised.status_code == 200, authorised.text
    payment = authorised.json()["payment"]["id"]
    [created] = entries(api, "payment.create")
    assert (created["outcome"], created["target"]) == ("success", payment)

    captured = api.post(f"/api/admin/payments/{payment}/capture", json={"amount": 1000})
    assert captured.status_code == 200, captured.text
    [capture] = entries(api, "payment.capture")
    assert (capture["outcome"], capture["target"]) == ("success", payment)
    assert json.loads(capture["before"])["status"] == "requires_capture"
    assert json.loads(capture["after"]) == {"amount": 1000, "status": "succeeded", "via": "api"}

    # A succeeded payment cannot be canceled: one failure entry, no success entry.
    refused = api.post(f"/api/admin/payments/{payment}/cancel")
    assert refused.status_code == 409, refused.text
    [cancel] = entries(api, "payment.cancel")
    assert (cancel["outcome"], cancel["target"]) == ("failure", payment)


def test_direct_calls_check_the_declared_permission_and_name_the_attempt(
    stack: Stack,
) -> None:
    attempts: list[tuple[str, str | None]] = []
    with stack.sessions() as session:
        viewer = Principal(
            user_id=0, email="v@paydesk.test", role="viewer", via="token", credential_id=0
        )
        ctx = Context(
            session,
            stack.settings,
            viewer,
            None,
            "api",
            attempted=lambda name, target: attempts.append((name, target)),
        )
        with pytest.raises(PermissionDenied):
            admin_actions.operations.replay_event(ctx, "evt_missing")
        assert attempts == [("event.replay", "evt_missing")]
        assert not ctx.may(admin_actions.payments.REFUND)
        # Nothing was written by the refused attempt (the web layer audits it).
        assert session.scalars(select(AuditEntry)).all() == []
        session.rollback()


def test_a_failed_action_writes_no_success_entry(stack: Stack) -> None:
    with stack.sessions() as session:
        admin = Principal(
            user_id=0, email="a@paydesk.test", role="admin", via="token", credential_id=0
        )
        ctx = Context(session, stack.settings, admin, None, "api")
        with pytest.raises(NotFound):
            admin_actions.subscriptions.resume(ctx, stack.gateway, "sub_missing")
        assert session.scalars(select(AuditEntry)).all() == []
        session.rollback()
