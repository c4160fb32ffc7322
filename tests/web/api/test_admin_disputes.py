"""Admin API disputes: list with filters and search, one dispute, hostile input."""

from __future__ import annotations

import io

import httpx

from paydesk.db.models import Dispute, Payment
from tests.support.admins import make_admin, make_token
from tests.support.stack import Stack


def seed(stack: Stack) -> None:
    with stack.sessions() as session:
        session.add(
            Payment(
                stripe_id="pi_d1",
                customer_id="cus_d1",
                amount=900,
                currency="usd",
                status="succeeded",
                disputed=True,
            )
        )
        for i, (status, reason) in enumerate(
            [("needs_response", "fraudulent"), ("won", "general"), ("lost", "fraudulent")]
        ):
            session.add(
                Dispute(
                    stripe_id=f"dp_{i}",
                    payment_intent_id="pi_d1" if i == 0 else f"pi_other{i}",
                    charge_id=f"ch_{i}",
                    amount=900,
                    currency="usd",
                    status=status,
                    reason=reason,
                    stripe_created=100 + i,
                )
            )
        session.commit()


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["data"]]


def test_list_filter_search_and_detail(stack: Stack, api: httpx.Client) -> None:
    seed(stack)
    assert ids(api.get("/api/admin/disputes")) == ["dp_2", "dp_1", "dp_0"]
    assert ids(api.get("/api/admin/disputes", params={"status": "won"})) == ["dp_1"]
    assert ids(api.get("/api/admin/disputes", params={"reason": "fraudulent"})) == ["dp_2", "dp_0"]
    assert ids(api.get("/api/admin/disputes", params={"customer": "cus_d1"})) == ["dp_0"]
    assert ids(api.get("/api/admin/disputes", params={"q": "ch_1"})) == ["dp_1"]
    first = api.get("/api/admin/disputes", params={"limit": 2}).json()
    assert first["has_more"] is True
    rest = api.get("/api/admin/disputes", params={"cursor": first["next_cursor"]})
    assert ids(rest) == ["dp_0"]
    one = api.get("/api/admin/disputes/dp_0").json()
    assert (one["id"], one["reason"], one["amount"]) == ("dp_0", "fraudulent", 900)
    missing = api.get("/api/admin/disputes/dp_nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "dispute_not_found"


def test_hostile_input_is_refused_not_crashed(stack: Stack, api: httpx.Client) -> None:
    for params in (
        {"status": "x" * 33},
        {"cursor": "nope"},
        {"limit": 10_000},
        {"created_gte": "yesterday"},
    ):
        assert api.get("/api/admin/disputes", params=params).status_code == 422, params
    assert api.get("/api/admin/disputes", params={"q": "a\x00b"}).status_code < 500
    assert api.get("/api/admin/disputes/%00").status_code < 500
    anonymous = httpx.get(str(api.base_url.join("/api/admin/disputes")), timeout=30)
    assert anonymous.status_code == 401


def disputed_payment(stack: Stack, api: httpx.Client, user: str) -> str:
    """A payment with the dispute test card; the dispute's id, mirrored."""
    customer = api.post("/api/admin/customers", json={"user_id": user}).json()["id"]
    paid = api.post(
        "/api/admin/payments",
        json={
            "customer": customer,
            "amount": 3000,
            "currency": "usd",
            "payment_method": "pm_card_createDispute",
        },
    )
    assert paid.status_code == 200, paid.text
    payment = paid.json()["payment"]["id"]
    [dispute] = stack.sdk.v1.disputes.list({"payment_intent": payment}).data
    return str(dispute.id)


def closed_events(stack: Stack, dispute_id: str) -> list[str]:
    events = stack.sdk.v1.events.list({"type": "charge.dispute.closed", "limit": 100}).data
    return [e.data.object["status"] for e in events if e.data.object["id"] == dispute_id]


def test_win_lose_and_accept_disputes_end_to_end(stack: Stack, api: httpx.Client) -> None:
    won = disputed_payment(stack, api, "dw-1")
    draft = api.post(
        f"/api/admin/disputes/{won}/evidence",
        json={"evidence": {"product_description": "A year of Premium"}, "submit": False},
    )
    assert draft.status_code == 200, draft.text
    assert draft.json()["status"] == "needs_response"
    assert closed_events(stack, won) == []
    submitted = api.post(
        f"/api/admin/disputes/{won}/evidence",
        json={"evidence": {"uncategorized_text": "winning_evidence"}, "submit": True},
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "won"
    assert closed_events(stack, won) == ["won"]
    assert api.get(f"/api/admin/disputes/{won}").json()["status"] == "won"
    # A closed dispute cannot be answered again: refused before Stripe is asked.
    again = api.post(
        f"/api/admin/disputes/{won}/evidence",
        json={"evidence": {"uncategorized_text": "more"}, "submit": True},
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "dispute_closed"

    lost = disputed_payment(stack, api, "dl-1")
    answer = api.post(
        f"/api/admin/disputes/{lost}/evidence",
        json={"evidence": {"uncategorized_text": "losing_evidence"}, "submit": True},
    )
    assert answer.json()["status"] == "lost"
    assert closed_events(stack, lost) == ["lost"]

    accepted = disputed_payment(stack, api, "da-1")
    closed = api.post(f"/api/admin/disputes/{accepted}/close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "lost"
    assert closed_events(stack, accepted) == ["lost"]

    audit = api.get("/api/admin/audit", params={"action": "dispute."}).json()
    assert sorted((a["action"], a["outcome"]) for a in audit) == [
        ("dispute.close", "success"),
        ("dispute.evidence", "failure"),
        ("dispute.evidence", "success"),
        ("dispute.evidence", "success"),
        ("dispute.evidence", "success"),
    ]
    # The audit keeps which fields were given, never their text.
    assert all("winning_evidence" not in (a["after"] or "") for a in audit)


def test_dispute_actions_need_finance_and_refuse_bad_evidence(
    stack: Stack, api: httpx.Client
) -> None:
    dispute = disputed_payment(stack, api, "dr-1")
    support = make_admin(stack.sessions, stack.settings, "support", email="ds@paydesk.test")
    headers = {"Authorization": f"Bearer {make_token(stack.sessions, stack.settings, support)}"}
    body = {"evidence": {"uncategorized_text": "winning_evidence"}, "submit": True}
    refused = api.post(f"/api/admin/disputes/{dispute}/evidence", json=body, headers=headers)
    assert refused.status_code == 403
    assert api.post(f"/api/admin/disputes/{dispute}/close", headers=headers).status_code == 403
    for bad in (
        {"evidence": {"card_number": "4242"}},
        {"evidence": {}},
        {"evidence": {"uncategorized_text": "   "}},
        {"evidence": {"uncategorized_text": "x" * 20_001}},
        {"evidence": {"uncategorized_text": "a\x00b"}},
        {"evidence": {"uncategorized_text": "ok"}, "submit": "maybe"},
        {"evidence": "text"},
    ):
        response = api.post(f"/api/admin/disputes/{dispute}/evidence", json=bad)
        assert response.status_code == 422, (bad, response.text)
    missing = api.post("/api/admin/disputes/dp_missing/close")
    assert missing.status_code == 404, missing.text
    assert stack.sdk.v1.disputes.retrieve(dispute).status == "needs_response"


def test_file_evidence_by_uploaded_file_id(stack: Stack, api: httpx.Client) -> None:
    """File fields take a Files API upload's id; anything else is refused."""
    dispute = disputed_payment(stack, api, "df-1")
    handle = io.BytesIO(b"%PDF-1.4\n% the receipt\n")
    handle.name = "receipt.pdf"
    receipt = stack.sdk.v1.files.create({"file": handle, "purpose": "dispute_evidence"})
    for bad in ({"receipt": "not-a-file"}, {"receipt": "file_" + "x" * 300}):
        response = api.post(f"/api/admin/disputes/{dispute}/evidence", json={"evidence": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["field"] == "receipt"
    unknown = api.post(
        f"/api/admin/disputes/{dispute}/evidence", json={"evidence": {"receipt": "file_missing"}}
    )
    assert 400 <= unknown.status_code < 500, unknown.text
    won = api.post(
        f"/api/admin/disputes/{dispute}/evidence",
        json={
            "evidence": {"receipt": receipt.id, "uncategorized_text": "winning_evidence"},
            "submit": True,
        },
    )
    assert won.status_code == 200, won.text
    assert won.json()["status"] == "won"
    assert stack.sdk.v1.disputes.retrieve(dispute).evidence.receipt == receipt.id
