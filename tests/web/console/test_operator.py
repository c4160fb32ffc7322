"""Operator features of the console, over real HTTP against the sandbox.

Refund review validation (the form comes back with the error next to its field),
no refund form where none is possible, payment capture/cancel/refresh with the
3-D Secure link, flash messages and the follow-up state of subscriptions, the
customer and refunds pages, CSV exports with filters and neutralised formulas —
and the hostile cases of each: anonymous, wrong role, bad CSRF, oversized or
poison input, never a 5xx.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from paydesk.db.models import AuditEntry, Dispute, Payment, StripeEvent
from tests.support.admins import make_admin, make_token
from tests.support.stack import Stack

Console = Callable[[str], tuple[httpx.Client, str]]


@pytest.fixture
def api(stack: Stack, base_url: str) -> Any:
    admin = make_admin(stack.sessions, stack.settings, "admin", email="seed-op@paydesk.test")
    token = make_token(stack.sessions, stack.settings, admin)
    with httpx.Client(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


@pytest.fixture
def customer(api: httpx.Client) -> str:
    made = api.post(
        "/api/admin/customers", json={"user_id": "op-1", "email": "=Op.Person@Example.com"}
    )
    assert made.status_code == 200, made.text
    return str(made.json()["id"])


def pay(api: httpx.Client, customer: str, pm: str = "pm_card_visa", **extra: Any) -> Any:
    body = {"customer": customer, "amount": 1999, "currency": "usd", "payment_method": pm}
    response = api.post("/api/admin/payments", json={**body, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def entries(stack: Stack, action: str) -> list[AuditEntry]:
    with stack.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "expected a number"),
        ("25.00", "more than what is still refundable"),
        ("1e999999999", "expected a number"),
        ("NaN", "expected a number"),
        ("-1", "positive amount"),
        ("0.001", "positive amount"),
        ("12\x00", "expected a number"),
        ("9" * 5000, "expected a number"),
    ],
)
def test_refund_review_keeps_the_form_with_the_error_next_to_the_field(
    stack: Stack, api: httpx.Client, customer: str, console_as: Console, amount: str, message: str
) -> None:
    payment = pay(api, customer)["payment"]["id"]
    client, token = console_as("finance")
    response = client.post(
        f"/admin/payments/{payment}/refund",
        data={"csrf_token": token, "amount": amount, "reason": "duplicate", "note": "kept note"},
    )
    assert response.status_code == 422, response.text[:300]
    field_error = re.search(
        r'<p class="error field-error" role="alert" id="amount-error">(.*?)</p>',
        response.text,
        re.S,
    )
    assert field_error, response.text[-3000:]
    assert message in field_error.group(1)
    assert 'aria-invalid="true" aria-describedby="amount-error"' in response.text
    assert 'id="refund-form"' in response.text
    assert "kept note" in response.text
    assert '<option value="duplicate" selected>' in response.text
    # Reviewing is not acting: nothing asked of Stripe, nothing audited.
    assert stack.sdk.v1.refunds.list({"payment_intent": payment}).data == []
    assert entries(stack, "refund.create") == []


def test_review_of_a_valid_amount_asks_for_confirmation(
    api: httpx.Client, customer: str, console_as: Console
) -> None:
    payment = pay(api, customer)["payment"]["id"]
    client, token = console_as("finance")
    review = client.post(
        f"/admin/payments/{payment}/refund", data={"csrf_token": token, "amount": "19.99"}
    )
    assert review.status_code == 200
    assert "Refund 19.99 USD of payment" in review.text
    assert "Please confirm" in review.text


def test_no_refund_form_on_a_fully_refunded_payment_with_the_reason(
    api: httpx.Client, customer: str, console_as: Console
) -> None:
    payment = pay(api, customer)["payment"]["id"]
    assert api.post(f"/api/admin/payments/{payment}/refunds", json={}).status_code == 201
    client, token = console_as("finance")
    page = client.get(f"/admin/payments/{payment}")
    assert 'id="refund-form"' not in page.text
    assert re.search(
        r'id="refund-blocked">No refund: The payment has already been fully refunded', page.text
    )
    again = client.post(f"/admin/payments/{payment}/refund", data={"csrf_token": token})
    assert again.status_code == 409
    assert "already been fully refunded" in again.text


def test_capture_and_cancel_with_confirmation_and_flash(
    stack: Stack, api: httpx.Client, customer: str, console_as: Console
) -> None:
    authorised = pay(api, customer, capture_method="manual")["payment"]["id"]
    other = pay(api, customer, capture_method="manual")["payment"]["id"]
    client, token = console_as("finance")
    page = client.get(f"/admin/payments/{authorised}").text
    assert 'id="capture-form"' in page
    assert 'id="payment-cancel-form"' in page
    review = client.post(f"/admin/payments/{authorised}/capture", data={"csrf_token": token})
    assert review.status_code == 200
    assert "Please confirm" in review.text
    done = client.post(
        f"/admin/payments/{authorised}/capture", data={"csrf_token": token, "confirm": "yes"}
    )
    assert done.status_code == 303
    assert done.headers["location"].endswith("?done=captured")
    after = client.get(done.headers["location"]).text
    assert 'id="flash">Payment captured.' in after
    assert "status-succeeded" in after
    assert 'id="capture-form"' not in after
    canceled = client.post(
        f"/admin/payments/{other}/cancel", data={"csrf_token": token, "confirm": "yes"}
    )
    assert canceled.status_code == 303
    assert "Payment canceled." in client.get(canceled.headers["location"]).text
    assert [e.outcome for e in entries(stack, "payment.capture")] == ["success"]
    assert json.loads(entries(stack, "payment.cancel")[0].after or "")["via"] == "console"
    # Capturing again: refused, audited once, an error page rather than a 5xx.
    again = client.post(
        f"/admin/payments/{authorised}/capture", data={"csrf_token": token, "confirm": "yes"}
    )
    assert again.status_code == 409
    assert [e.outcome for e in entries(stack, "payment.capture")] == ["success", "failure"]


def test_refresh_shows_the_3ds_link_to_pass_on(
    api: httpx.Client, customer: str, console_as: Console
) -> None:
    made = pay(
        api,
        customer,
        pm="pm_card_threeDSecure2Required",
        return_url="https://example.com/back",
    )
    assert made["payment"]["status"] == "requires_action", made
    payment = made["payment"]["id"]
    client, token = console_as("support")
    page = client.get(f"/admin/payments/{payment}").text
    assert "get the 3-D Secure link" in page
    refreshed = client.post(f"/admin/payments/{payment}/refresh", data={"csrf_token": token})
    assert refreshed.status_code == 200
    expected = made["next_action"]["redirect_to_url"]["url"]
    assert f'id="next-action-url" value="{expected}"' in refreshed.text
    assert 'data-copy="#next-action-url"' in refreshed.text
    # Support may refresh but not capture or cancel.
    assert 'id="payment-cancel-form"' not in refreshed.text
    denied = client.post(
        f"/admin/payments/{payment}/cancel", data={"csrf_token": token, "confirm": "yes"}
    )
    assert denied.status_code == 403


def test_cancel_at_period_end_offers_resume_not_cancel_again(
    api: httpx.Client, customer: str, console_as: Console
) -> None:
    sub = api.post(
        "/api/admin/subscriptions",
        json={"customer": customer, "tier": "premium", "payment_method": "pm_card_visa"},
    ).json()["subscription"]["id"]
    client, token = console_as("finance")
    done = client.post(
        f"/admin/subscriptions/{sub}/cancel",
        data={"csrf_token": token, "when": "period_end", "confirm": "yes"},
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "cancels at the end of its period" in page
    assert 'id="resume-form"' in page
    assert 'id="cancel-form"' not in page
    assert 'id="cancel-now-form"' in page
    resumed = client.post(
        f"/admin/subscriptions/{sub}/resume", data={"csrf_token": token, "confirm": "yes"}
    )
    page = client.get(resumed.headers["location"]).text
    assert "Subscription resumed" in page
    assert 'id="cancel-form"' in page
    assert 'id="resume-form"' not in page


def test_customer_page_and_refunds_page(
    api: httpx.Client, customer: str, console_as: Console
) -> None:
    payment = pay(api, customer)["payment"]["id"]
    refund = api.post(f"/api/admin/payments/{payment}/refunds", json={"amount": 500}).json()["id"]
    client, _ = console_as("viewer")
    page = client.get(f"/admin/customers/{customer}")
    assert page.status_code == 200
    assert payment in page.text
    assert refund in page.text
    assert "=Op.Person@" in page.text  # the domain is normalised by the API
    assert client.get("/admin/customers/cus_missing").status_code == 404
    assert client.get("/admin/customers/" + "x" * 5000).status_code == 404
    listed = client.get("/admin/refunds", params={"customer": customer})
    assert f'id="refund-{refund}"' in listed.text
    assert (
        f'id="refund-{refund}"'
        not in client.get("/admin/refunds", params={"customer": "cus_other"}).text
    )
    # Search by email in any case reaches the customer's payments.
    found = client.get("/admin/payments", params={"q": "=op.person@example.COM"})
    assert payment in found.text


def read_csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.reader(io.StringIO(response.text)))


def test_csv_exports_follow_filters_and_neutralise_formulas(
    api: httpx.Client, customer: str, console_as: Console
) -> None:
    paid = pay(api, customer)["payment"]["id"]
    declined = api.post(
        "/api/admin/payments",
        json={
            "customer": customer,
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa_chargeDeclined",
        },
    )
    assert declined.status_code == 402
    api.post(f"/api/admin/payments/{paid}/refunds", json={"amount": 100})
    client, _ = console_as("viewer")
    rows = read_csv(client.get("/admin/payments.csv", params={"status": "succeeded"}))
    assert rows[0][:3] == ["id", "created", "customer"]
    assert [r[0] for r in rows[1:]] == [paid]
    everything = read_csv(client.get("/admin/payments.csv"))
    assert len(everything) == 3
    customers = read_csv(client.get("/admin/customers.csv", params={"q": customer}))
    # The customer's email starts with "=": a spreadsheet must not run it.
    assert customers[1][2].lower() == "'=op.person@example.com"
    refunds = read_csv(client.get("/admin/refunds.csv", params={"customer": customer}))
    assert [r[2] for r in refunds[1:]] == [paid]
    assert read_csv(client.get("/admin/subscriptions.csv"))[0][0] == "id"
    assert read_csv(client.get("/admin/disputes.csv"))[1:] == []
    assert read_csv(client.get("/admin/events.csv"))[0][:2] == ["id", "type"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/payments.csv",
        "/admin/refunds",
        "/admin/refunds.csv",
        "/admin/customers.csv",
        "/admin/customers/cus_x",
        "/admin/subscriptions.csv",
        "/admin/disputes.csv",
        "/admin/events.csv",
    ],
)
def test_new_pages_need_a_session_and_survive_poison_filters(
    base_url: str, console_as: Console, path: str
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as anonymous:
        response = anonymous.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/admin/login"
    client, _ = console_as("viewer")
    for params in (
        {"q": "a\x00b", "status": "\x00", "customer": "\x00", "type": "\x00"},
        {"q": "x" * 60_000, "cursor": "9" * 40},
        {"cursor": "1_1"},
    ):
        response = client.get(path, params=params)
        assert response.status_code < 500, (path, params, response.text[:300])


@pytest.mark.parametrize("action", ["capture", "cancel", "refresh"])
def test_payment_actions_refuse_bad_csrf_and_unknown_actions(
    api: httpx.Client, customer: str, console_as: Console, action: str
) -> None:
    payment = pay(api, customer, capture_method="manual")["payment"]["id"]
    client, token = console_as("admin")
    forged = client.post(
        f"/admin/payments/{payment}/{action}", data={"csrf_token": "forged", "confirm": "yes"}
    )
    assert forged.status_code == 403
    assert "csrf_failed" in forged.text
    assert (
        client.post(f"/admin/payments/{payment}/explode", data={"csrf_token": token}).status_code
        == 404
    )
    huge = client.post(
        f"/admin/payments/{payment}/{action}",
        content=b"csrf_token=" + token.encode() + b"&pad=" + b"x" * 3_000_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code < 500
    state = api.get(f"/api/admin/payments/{payment}").json()["status"]
    assert state == "requires_capture"


def test_event_detail_pretty_payload_without_secrets_and_replay(
    stack: Stack, console_as: Console
) -> None:
    payload = {
        "id": "evt_detail_1",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_1", "client_secret": "pi_1_secret_abc", "amount": 500}},
    }
    with stack.sessions() as session:
        for i, body in enumerate([json.dumps(payload), "not json"]):
            session.add(
                StripeEvent(
                    event_id=f"evt_detail_{i + 1}",
                    type="payment_intent.succeeded",
                    created=1_790_000_000 + i,
                    object_id="pi_1",
                    payload=body,
                    status="failed",
                    attempts=3,
                    last_error="KeyError: 'x'",
                )
            )
        for i in range(60):
            session.add(
                StripeEvent(
                    event_id=f"evt_old_{i:02d}",
                    type="invoice.paid",
                    created=1_700_000_000 + i,
                    payload="{}",
                    status="processed",
                )
            )
        session.commit()
    client, token = console_as("support")
    page = client.get("/admin/events/evt_detail_1")
    assert page.status_code == 200
    assert "pi_1_secret_abc" not in page.text
    assert "[redacted]" in page.text
    assert "&#34;amount&#34;: 500" in page.text  # HTML-escaped JSON
    assert 'id="event-attempts">3<' in page.text
    assert "not valid JSON" in client.get("/admin/events/evt_detail_2").text
    assert client.get("/admin/events/evt_nope").status_code == 404
    assert client.get("/admin/events/%00").status_code < 500
    # The list pages: 50 newest, then an "older" link to the rest.
    first = client.get("/admin/events")
    assert first.text.count('<tr id="event-') == 50
    older = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert second.text.count('<tr id="event-') == 12
    assert 'id="older"' not in second.text
    # Replay from the detail page comes back to it.
    done = client.post(
        "/admin/events/evt_detail_1/replay",
        data={"csrf_token": token, "confirm": "yes", "from": "detail"},
    )
    assert done.status_code == 303
    back = client.get(done.headers["location"]).text
    assert "queued for replay" in back
    assert 'id="event-status"><span class="status status-pending">' in back


def test_dispute_detail_with_deadline_payment_and_timeline(
    stack: Stack, console_as: Console
) -> None:
    now = datetime.now(UTC)
    with stack.sessions() as session:
        session.add(
            Payment(
                stripe_id="pi_disputed",
                customer_id="cus_d",
                amount=4200,
                amount_received=4200,
                currency="usd",
                status="succeeded",
                latest_charge_id="ch_disputed",
                disputed=True,
            )
        )
        session.add_all(
            [
                Dispute(
                    stripe_id="dp_open",
                    charge_id="ch_disputed",
                    payment_intent_id="pi_disputed",
                    amount=4200,
                    currency="usd",
                    status="needs_response",
                    reason="fraudulent",
                    evidence_due_by=now + timedelta(days=3, hours=5, minutes=1),
                ),
                Dispute(
                    stripe_id="dp_late",
                    amount=100,
                    currency="usd",
                    status="needs_response",
                    reason="general",
                    evidence_due_by=now - timedelta(hours=1),
                ),
                StripeEvent(
                    event_id="evt_dispute_created",
                    type="charge.dispute.created",
                    created=1_790_000_000,
                    object_id="dp_open",
                    payload="{}",
                    status="processed",
                ),
            ]
        )
        session.commit()
    client, _ = console_as("viewer")
    listed = client.get("/admin/disputes").text
    assert 'href="/admin/disputes/dp_open"' in listed
    page = client.get("/admin/disputes/dp_open").text
    assert "fraudulent" in page
    assert "3 days 5 h left" in page
    assert 'href="/admin/payments/pi_disputed"' in page
    assert "charge.dispute.created" in page
    assert "overdue" in client.get("/admin/disputes/dp_late").text
    assert client.get("/admin/disputes/dp_missing").status_code == 404
    assert client.get("/admin/disputes/" + "x" * 10_000).status_code == 404
    assert client.get("/admin/disputes/%00").status_code < 500
    # The disputed payment offers no refund, and says why.
    payment = client.get("/admin/payments/pi_disputed").text
    assert 'id="refund-form"' not in payment
    assert "respond to the dispute instead" in payment


def test_answer_a_dispute_from_the_console(
    stack: Stack, api: httpx.Client, customer: str, console_as: Console
) -> None:
    payment = pay(api, customer, pm="pm_card_createDispute")["payment"]["id"]
    [dispute] = stack.sdk.v1.disputes.list({"payment_intent": payment}).data
    support, support_token = console_as("support")
    refused = support.post(
        f"/admin/disputes/{dispute.id}/evidence",
        data={"csrf_token": support_token, "product_description": "x", "submit": "draft"},
    )
    assert refused.status_code == 403
    client, token = console_as("finance")
    draft = client.post(
        f"/admin/disputes/{dispute.id}/evidence",
        data={"csrf_token": token, "product_description": "A year of Premium", "submit": "draft"},
    )
    assert draft.status_code == 303, draft.text
    page = client.get(draft.headers["location"]).text
    assert "Evidence saved as a draft" in page
    assert 'id="evidence-form"' in page
    review = client.post(
        f"/admin/disputes/{dispute.id}/evidence",
        data={"csrf_token": token, "uncategorized_text": "winning_evidence", "submit": "submit"},
    )
    assert review.status_code == 200
    assert "Please confirm" in review.text
    assert stack.sdk.v1.disputes.retrieve(dispute.id).status == "needs_response"
    done = client.post(
        f"/admin/disputes/{dispute.id}/evidence",
        data={
            "csrf_token": token,
            "uncategorized_text": "winning_evidence",
            "submit": "submit",
            "confirm": "yes",
        },
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "Evidence submitted to the bank." in page
    assert 'status-won">won<' in page
    assert 'id="evidence-form"' not in page
    assert stack.sdk.v1.disputes.retrieve(dispute.id).status == "won"
    closed_again = client.post(
        f"/admin/disputes/{dispute.id}/close", data={"csrf_token": token, "confirm": "yes"}
    )
    assert closed_again.status_code == 409
    assert (
        client.post(f"/admin/disputes/{dispute.id}/explode", data={"csrf_token": token}).status_code
        == 404
    )
    forged = client.post(
        f"/admin/disputes/{dispute.id}/close", data={"csrf_token": "x", "confirm": "yes"}
    )
    assert forged.status_code == 403
