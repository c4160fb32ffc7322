"""Admin API disputes: list with filters and search, one dispute, hostile input."""

from __future__ import annotations

import httpx

from paydesk.db.models import Dispute, Payment
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
