"""Changing a subscription's tier from the customer's page: the same audited admin
action as the subscription page, offered only to roles that may, back to the
customer with a flash."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from paydesk.db.models import AuditEntry, Subscription
from tests.support.stack import Stack
from tests.web.console.conftest import csrf_of
from tests.web.console.test_operator import Console, api, customer, pay

__all__ = ["api", "customer"]


def test_change_tier_from_the_customer_page(
    stack: Stack, api: httpx.Client, customer: str, console_as: Console
) -> None:
    made = api.post(
        "/api/admin/subscriptions",
        json={"customer": customer, "tier": "premium", "payment_method": "pm_card_visa"},
    )
    assert made.status_code == 201, made.text
    subscription = made.json()["subscription"]["id"]
    pay(api, customer)  # the page shows payments too; one keeps it realistic
    page_url = f"/admin/customers/{customer}"
    action = f"/admin/subscriptions/{subscription}/tier"

    viewer, viewer_token = console_as("viewer")
    assert 'id="customer-tier-form"' not in viewer.get(page_url).text
    refused = viewer.post(
        action, data={"csrf_token": viewer_token, "tier": "enterprise", "from": "customer"}
    )
    assert refused.status_code == 403

    support, _ = console_as("support")
    page = support.get(page_url).text
    assert 'id="customer-tier-form"' in page
    token = csrf_of(page)
    forged = support.post(action, data={"csrf_token": "forged", "tier": "enterprise"})
    assert forged.status_code == 403
    poison = support.post(action, data={"csrf_token": token, "tier": "platinum\x00"})
    assert poison.status_code == 422
    review = support.post(
        action, data={"csrf_token": token, "tier": "enterprise", "from": "customer"}
    )
    assert review.status_code == 200
    assert "Please confirm" in review.text
    assert 'name="from" value="customer"' in review.text
    form = {"csrf_token": token, "tier": "enterprise", "from": "customer", "confirm": "yes"}
    done = support.post(action, data={**form, "form_key": "t1"})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{page_url}?done=tier_changed"
    back = support.get(done.headers["location"]).text
    assert "Tier changed." in back
    with stack.sessions() as session:
        row = session.scalars(
            select(Subscription).where(Subscription.stripe_id == subscription)
        ).one()
        assert row.tier == "enterprise"
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "subscription.change_tier")
        ).all()
    assert [(a.target, a.outcome) for a in audited if a.outcome == "success"] == [
        (subscription, "success")
    ]
    price = stack.sdk.v1.subscriptions.retrieve(subscription)["items"].data[0].price
    assert price.unit_amount == 2999
