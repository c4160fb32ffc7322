"""A customer deleted in Stripe: shown as deleted, and acting on it gives the guide's
"Customer not found" explanation (issue 14, webhook event coverage)."""

from __future__ import annotations

import time

import httpx
import pytest

from paydesk.billing.customers import CUSTOMER_NOT_FOUND_HINT
from paydesk.billing.mirror import apply_customer
from tests.support.admins import make_admin
from tests.support.stack import Stack
from tests.web.console.conftest import sign_in

pytestmark = pytest.mark.postgres


def test_a_customer_deleted_in_stripe(stack: Stack, api: httpx.Client) -> None:
    created = api.post(
        "/api/admin/customers", json={"user_id": "gone-1", "email": "gone@example.com"}
    )
    assert created.status_code == 200, created.text
    customer = created.json()["id"]
    # Deleted in Stripe (the sandbox, through the official SDK); its customer.deleted
    # event carries this stub, which the webhook handler mirrors like this.
    stub = stack.sdk.customers.delete(customer).to_dict()
    assert stub["deleted"] is True
    with stack.sessions() as session:
        apply_customer(session, stub, int(time.time()))
        session.commit()

    shown = api.get(f"/api/admin/customers/{customer}")
    assert shown.status_code == 200
    assert shown.json()["deleted"] is True
    for path, body in (
        (
            "/api/admin/payments",
            {
                "customer": customer,
                "amount": 500,
                "currency": "usd",
                "payment_method": "pm_card_visa",
            },
        ),
        ("/api/admin/subscriptions", {"customer": customer, "tier": "premium"}),
    ):
        refused = api.post(path, json=body, headers={"Idempotency-Key": f"gone-{path}"})
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "customer_deleted"
        assert error["message"].startswith("Customer not found in Stripe")
        assert CUSTOMER_NOT_FOUND_HINT in error["message"]
    unknown = api.get("/api/admin/customers/cus_neverexisted")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "customer_not_found"
    assert CUSTOMER_NOT_FOUND_HINT in unknown.json()["error"]["message"]

    # The console shows it as deleted, without the create forms.
    base = str(api.base_url).rstrip("/")
    console, _ = sign_in(base, make_admin(stack.sessions, stack.settings, "finance"))
    page = console.get(f"/admin/customers/{customer}")
    assert page.status_code == 200
    assert 'id="customer-deleted"' in page.text
    assert "create-payment-form" not in page.text
    assert "create-subscription-form" not in page.text
    console.close()
