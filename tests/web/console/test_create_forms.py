"""Creating from the console: a payment and a subscription on a customer's page, and a
pay link on the page of a payment that awaits the customer.

Over real HTTP against the sandbox, on both databases: the happy paths with their
audit entries, the review step keeping the form with the error next to its field
(poison input included, never a 5xx), roles that may not, anonymous, bad CSRF.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from paydesk.db.models import AuditEntry, Invoice, Payment
from tests.support.admins import make_admin, make_token
from tests.support.stack import Stack

Console = Callable[[str], tuple[httpx.Client, str]]


@pytest.fixture
def api(stack: Stack, base_url: str) -> Any:
    admin = make_admin(stack.sessions, stack.settings, "admin", email="seed-create@paydesk.test")
    token = make_token(stack.sessions, stack.settings, admin)
    with httpx.Client(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


@pytest.fixture
def customer(api: httpx.Client) -> str:
    made = api.post("/api/admin/customers", json={"user_id": "cf-1", "email": "cf@example.com"})
    assert made.status_code == 200, made.text
    return str(made.json()["id"])


def entries(stack: Stack, action: str) -> list[AuditEntry]:
    with stack.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


def field_error(html: str, field_id: str) -> str:
    found = re.search(
        rf'<p class="error field-error" role="alert" id="{field_id}-error">(.*?)</p>',
        html,
        re.S,
    )
    assert found, html[-3000:]
    assert f'aria-invalid="true" aria-describedby="{field_id}-error"' in html
    return found.group(1)


def stripe_payments(stack: Stack, customer: str) -> list[Any]:
    return list(stack.sdk.v1.payment_intents.list({"customer": customer}).data)


# --- create payment -------------------------------------------------------------------


def test_create_payment_review_confirm_and_audit(
    stack: Stack, customer: str, console_as: Console
) -> None:
    client, token = console_as("finance")
    page = client.get(f"/admin/customers/{customer}").text
    assert 'id="create-payment-form"' in page
    assert 'id="create-subscription-form"' in page
    review = client.post(
        f"/admin/customers/{customer}/payments",
        data={
            "csrf_token": token,
            "amount": "12.50",
            "currency": "eur",
            "description": "Support plan",
            "form_key": "k-create-1",
        },
    )
    assert review.status_code == 200, review.text[-2000:]
    assert "Please confirm" in review.text
    assert "Create a payment of 12.50 EUR for customer" in review.text
    assert stripe_payments(stack, customer) == []  # reviewing is not acting
    assert entries(stack, "payment.create") == []
    done = client.post(
        f"/admin/customers/{customer}/payments",
        data={
            "csrf_token": token,
            "amount": "12.50",
            "currency": "eur",
            "description": "Support plan",
            "form_key": "k-create-1",
            "confirm": "yes",
        },
    )
    assert done.status_code == 303, done.text[-2000:]
    location = done.headers["location"]
    assert location.endswith("?done=payment_created")
    [intent] = stripe_payments(stack, customer)
    assert (intent.amount, intent.currency, intent.status) == (
        1250,
        "eur",
        "requires_payment_method",
    )
    assert intent.description == "Support plan"
    assert intent.id in location
    after = client.get(location).text
    assert 'id="flash">Payment created' in after
    assert 'id="pay-link-form"' in after  # it awaits the customer
    [entry] = entries(stack, "payment.create")
    assert entry.outcome == "success"
    assert entry.target == intent.id
    assert json.loads(entry.after or "")["via"] == "console"
    assert json.loads(entry.after or "")["amount"] == 1250
    # The same confirmed form again (a double submit) makes no second payment.
    again = client.post(
        f"/admin/customers/{customer}/payments",
        data={
            "csrf_token": token,
            "amount": "12.50",
            "currency": "eur",
            "description": "Support plan",
            "form_key": "k-create-1",
            "confirm": "yes",
        },
    )
    assert again.status_code == 303
    assert len(stripe_payments(stack, customer)) == 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"amount": "abc"}, "amount", "expected a number"),
        ({"amount": "1e999999999"}, "amount", "expected a number"),
        ({"amount": "NaN"}, "amount", "expected a number"),
        ({"amount": "12\x00"}, "amount", "expected a number"),
        ({"amount": "-5"}, "amount", "positive amount"),
        ({"amount": "0.001"}, "amount", "positive amount"),
        ({"amount": "1000000"}, "amount", "at most 999999.99 USD"),
        ({"amount": "9" * 5000}, "amount", "expected a number"),
        ({"amount": "0.10"}, "amount", "at least 0.50 USD"),
        ({"amount": ""}, "amount", "required"),
        ({"amount": "5", "currency": "xyz"}, "currency", "choose one"),
        ({"amount": "5", "currency": "\x00"}, "currency", "choose one"),
        ({"amount": "5", "description": "a\x00b"}, "description", "control characters"),
        ({"amount": "5", "description": "d" * 1001}, "description", "at most 1000"),
    ],
)
def test_create_payment_review_keeps_the_form_with_the_error_next_to_the_field(
    stack: Stack,
    customer: str,
    console_as: Console,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    client, token = console_as("finance")
    data = {"csrf_token": token, "currency": "usd", "description": "kept text", **fields}
    response = client.post(f"/admin/customers/{customer}/payments", data=data)
    assert response.status_code == 422, response.text[-2000:]
    assert message in field_error(response.text, f"pay-{field}")
    assert 'id="create-payment-form"' in response.text
    assert "\x00" not in response.text
    if field != "description":
        assert "kept text" in response.text
    assert stripe_payments(stack, customer) == []
    assert entries(stack, "payment.create") == []


def test_create_payment_confirmed_with_poison_is_an_audited_4xx(
    stack: Stack, customer: str, console_as: Console
) -> None:
    client, token = console_as("admin")
    response = client.post(
        f"/admin/customers/{customer}/payments",
        data={"csrf_token": token, "amount": "1e999999999", "currency": "usd", "confirm": "yes"},
    )
    assert response.status_code == 422
    assert [e.outcome for e in entries(stack, "payment.create")] == ["failure"]
    assert stripe_payments(stack, customer) == []


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_create_forms_refused_to_roles_that_may_not(
    stack: Stack, customer: str, console_as: Console, role: str
) -> None:
    client, token = console_as(role)
    page = client.get(f"/admin/customers/{customer}").text
    assert 'id="create-payment-form"' not in page
    assert 'id="create-subscription-form"' not in page
    for path, data in (
        ("payments", {"amount": "5", "currency": "usd", "confirm": "yes"}),
        ("subscriptions", {"tier": "premium", "confirm": "yes"}),
    ):
        response = client.post(
            f"/admin/customers/{customer}/{path}", data={"csrf_token": token, **data}
        )
        assert response.status_code == 403, (path, response.status_code)
        assert "permission_denied" in response.text
    assert stripe_payments(stack, customer) == []
    assert [e.outcome for e in entries(stack, "payment.create")] == ["failure"]
    assert [e.outcome for e in entries(stack, "subscription.create")] == ["failure"]


def test_create_forms_need_a_session_and_a_csrf_token(
    stack: Stack, base_url: str, customer: str, console_as: Console
) -> None:
    for path in ("payments", "subscriptions"):
        with httpx.Client(base_url=base_url, timeout=30) as anonymous:
            response = anonymous.post(
                f"/admin/customers/{customer}/{path}",
                data={"amount": "5", "currency": "usd", "tier": "free", "confirm": "yes"},
            )
            assert response.status_code == 303
            assert response.headers["location"] == "/admin/login"
    client, _ = console_as("admin")
    for path in ("payments", "subscriptions"):
        for token in ("forged", ""):
            response = client.post(
                f"/admin/customers/{customer}/{path}",
                data={
                    "csrf_token": token,
                    "amount": "5",
                    "currency": "usd",
                    "tier": "free",
                    "confirm": "yes",
                },
            )
            assert response.status_code == 403, (path, token)
            assert "csrf_failed" in response.text
    assert stripe_payments(stack, customer) == []
    assert entries(stack, "payment.create") == []
    assert entries(stack, "subscription.create") == []
    # A customer that does not exist: a 404 page, never a 5xx.
    client2, token2 = console_as("finance")
    for path in ("payments", "subscriptions"):
        for target in ("cus_missing", "x" * 5000, "%00"):
            response = client2.post(
                f"/admin/customers/{target}/{path}",
                data={"csrf_token": token2, "amount": "5", "currency": "usd", "tier": "free"},
            )
            assert 400 <= response.status_code < 500, (path, target, response.status_code)


# --- create subscription --------------------------------------------------------------


def test_create_subscription_review_confirm_audit_and_no_second(
    stack: Stack, api: httpx.Client, customer: str, console_as: Console
) -> None:
    client, token = console_as("finance")
    bad = client.post(
        f"/admin/customers/{customer}/subscriptions", data={"csrf_token": token, "tier": "gold"}
    )
    assert bad.status_code == 422
    assert "choose one" in field_error(bad.text, "sub-tier")
    poison = client.post(
        f"/admin/customers/{customer}/subscriptions",
        data={"csrf_token": token, "tier": "free\x00"},
    )
    assert poison.status_code == 422
    review = client.post(
        f"/admin/customers/{customer}/subscriptions",
        data={"csrf_token": token, "tier": "premium", "form_key": "k-sub-1"},
    )
    assert review.status_code == 200
    assert "Please confirm" in review.text
    assert "to CloudToLocalLLM Premium (9.99 USD / month)" in review.text
    assert entries(stack, "subscription.create") == []
    done = client.post(
        f"/admin/customers/{customer}/subscriptions",
        data={"csrf_token": token, "tier": "premium", "form_key": "k-sub-1", "confirm": "yes"},
    )
    assert done.status_code == 303, done.text[-2000:]
    assert done.headers["location"].endswith("?done=subscription_created")
    page = client.get(done.headers["location"]).text
    assert 'id="flash">Subscription created.' in page
    assert 'id="sub-tier">premium<' in page
    [entry] = entries(stack, "subscription.create")
    assert entry.outcome == "success"
    assert json.loads(entry.after or "")["via"] == "console"
    assert json.loads(entry.after or "")["tier"] == "premium"
    [sub] = api.get("/api/admin/subscriptions", params={"customer": customer}).json()["data"]
    assert sub["tier"] == "premium"
    assert entry.target == sub["id"]
    # Subscribed: the page points at the subscription instead of offering another.
    customer_page = client.get(f"/admin/customers/{customer}").text
    assert 'id="create-subscription-form"' not in customer_page
    assert 'id="subscription-exists"' in customer_page
    again = client.post(
        f"/admin/customers/{customer}/subscriptions", data={"csrf_token": token, "tier": "free"}
    )
    assert again.status_code == 409
    assert "already has subscription" in field_error(again.text, "sub-tier")
    forced = client.post(
        f"/admin/customers/{customer}/subscriptions",
        data={"csrf_token": token, "tier": "free", "confirm": "yes"},
    )
    assert forced.status_code == 409
    assert [e.outcome for e in entries(stack, "subscription.create")] == ["success", "failure"]


# --- pay link -------------------------------------------------------------------------


def test_pay_link_for_a_payment_that_awaits_the_customer(
    stack: Stack, base_url: str, api: httpx.Client, customer: str, console_as: Console
) -> None:
    made = api.post(
        "/api/admin/payments",
        json={"customer": customer, "amount": 2500, "currency": "usd", "confirm": False},
    )
    assert made.status_code == 200, made.text
    payment = made.json()["payment"]["id"]
    assert made.json()["payment"]["status"] == "requires_payment_method"
    viewer, viewer_token = console_as("viewer")
    assert 'id="pay-link-form"' not in viewer.get(f"/admin/payments/{payment}").text
    denied = viewer.post(f"/admin/payments/{payment}/pay-link", data={"csrf_token": viewer_token})
    assert denied.status_code == 403
    client, token = console_as("support")
    page = client.get(f"/admin/payments/{payment}").text
    assert 'id="pay-link-form"' in page
    assert 'id="pay-link-url"' not in page
    forged = client.post(f"/admin/payments/{payment}/pay-link", data={"csrf_token": "x"})
    assert forged.status_code == 403
    assert "csrf_failed" in forged.text
    created = client.post(f"/admin/payments/{payment}/pay-link", data={"csrf_token": token})
    assert created.status_code == 200, created.text[-2000:]
    url = re.search(r'id="pay-link-url" value="([^"]+)"', created.text)
    assert url, created.text[-3000:]
    assert url.group(1).startswith(f"{base_url}/portal/session/")
    assert 'data-copy="#pay-link-url"' in created.text
    assert re.search(r'id="pay-link-expires">Expires \d{4}-\d\d-\d\d \d\d:\d\d UTC', created.text)
    # Shown once: the page itself does not show it again.
    assert url.group(1) not in client.get(f"/admin/payments/{payment}").text
    # The viewer's refusal, then the link.
    refusal, entry = entries(stack, "payment.pay_link")
    assert (refusal.outcome, entry.outcome, entry.target) == ("failure", "success", payment)
    assert json.loads(entry.after or "") == {"customer": customer, "via": "console"}
    # The link opens the portal once.
    with httpx.Client(timeout=30) as browser:
        opened = browser.get(url.group(1))
        assert opened.status_code in (200, 303), opened.status_code


def test_no_pay_link_for_a_payment_that_awaits_nothing(
    stack: Stack, api: httpx.Client, customer: str, console_as: Console
) -> None:
    paid = api.post(
        "/api/admin/payments",
        json={
            "customer": customer,
            "amount": 1999,
            "currency": "usd",
            "payment_method": "pm_card_visa",
        },
    ).json()["payment"]["id"]
    client, token = console_as("finance")
    assert 'id="pay-link-form"' not in client.get(f"/admin/payments/{paid}").text
    refused = client.post(f"/admin/payments/{paid}/pay-link", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "nothing awaits the customer" in refused.text
    assert "/portal/session/" not in refused.text
    missing = client.post("/admin/payments/pi_missing/pay-link", data={"csrf_token": token})
    assert missing.status_code == 404
    poison = client.post("/admin/payments/%00/pay-link", data={"csrf_token": token})
    assert 400 <= poison.status_code < 500
    huge = client.post(f"/admin/payments/{'x' * 5000}/pay-link", data={"csrf_token": token})
    assert 400 <= huge.status_code < 500
    outcomes = [e.outcome for e in entries(stack, "payment.pay_link")]
    assert outcomes
    assert set(outcomes) == {"failure"}


def test_pay_link_of_a_payment_with_an_open_invoice_pays_the_invoice(
    stack: Stack, console_as: Console
) -> None:
    # The mirror as the worker leaves it for a subscription's unpaid first invoice.
    with stack.sessions() as session:
        session.add(
            Invoice(
                stripe_id="in_console_open",
                customer_id="cus_inv",
                subscription_id="sub_inv",
                payment_intent_id="pi_of_invoice",
                status="open",
                amount_due=999,
                currency="usd",
            )
        )
        session.add(
            Payment(
                stripe_id="pi_of_invoice",
                customer_id="cus_inv",
                invoice_id="in_console_open",
                amount=999,
                currency="usd",
                status="requires_payment_method",
            )
        )
        session.commit()
    client, token = console_as("support")
    assert 'id="pay-link-form"' in client.get("/admin/payments/pi_of_invoice").text
    created = client.post("/admin/payments/pi_of_invoice/pay-link", data={"csrf_token": token})
    assert created.status_code == 200, created.text[-2000:]
    assert 'id="pay-link-url"' in created.text
    assert "to pay <code>in_console_open</code>" in created.text
    [entry] = entries(stack, "payment.pay_link")
    assert (entry.outcome, entry.target) == ("success", "in_console_open")
    # Once the invoice is paid, nothing awaits the customer: no form, a 409.
    with stack.sessions() as session:
        invoice = session.scalars(select(Invoice)).one()
        invoice.status = "paid"
        session.commit()
    assert 'id="pay-link-form"' not in client.get("/admin/payments/pi_of_invoice").text
    refused = client.post("/admin/payments/pi_of_invoice/pay-link", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "only an open invoice can be paid" in refused.text
