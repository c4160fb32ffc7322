"""Admin API metrics over real payments, refunds and subscriptions made through the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx


def _customer(api: httpx.Client) -> str:
    response = api.post("/api/admin/customers", json={"user_id": "m-1", "email": "m@example.com"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _pay(api: httpx.Client, customer: str, pm: str, amount: int, n: int) -> httpx.Response:
    return api.post(
        "/api/admin/payments",
        json={"customer": customer, "amount": amount, "currency": "usd", "payment_method": pm},
        headers={"Idempotency-Key": f"metrics-{n}"},
    )


def test_metrics_of_a_window(api: httpx.Client) -> None:
    customer = _customer(api)
    ok = [_pay(api, customer, "pm_card_visa", amount, n) for n, amount in enumerate((1000, 2001))]
    assert [r.status_code for r in ok] == [200, 200]
    declined = _pay(api, customer, "pm_card_visa_chargeDeclined", 500, 9)
    assert declined.status_code == 402
    first = ok[0].json()["payment"]["id"]
    refund = api.post(f"/api/admin/payments/{first}/refunds", json={"amount": 400})
    assert refund.status_code == 201, refund.text
    sub = api.post(
        "/api/admin/subscriptions",
        json={"customer": customer, "tier": "premium", "payment_method": "pm_card_visa"},
    )
    assert sub.status_code == 201, sub.text

    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    body = api.get("/api/admin/metrics", params={**window, "currency": "USD"}).json()
    assert body["currency"] == "usd"
    payments = body["payments"]
    assert (payments["succeeded"], payments["failed"]) == (2, 1)
    assert payments["failure_rate"] == 1 / 3
    assert payments["volume"] == 1000 + 2001
    assert payments["average_value"] == 1501  # 1500.5, halves away from zero
    assert body["refunds"] == {"count": 1, "amount": 400, "refund_rate": 0.5}
    assert body["mrr"]["mrr_start"] == 0
    assert body["mrr"]["mrr_end"] == 999
    assert body["mrr"]["new"] == 999
    assert body["mrr"]["revenue_churn_rate"] is None  # no MRR at the start: no denominator
    assert body["new_subscriptions"] == 1
    assert body["disputes"]["opened"] == 0

    before = api.get(
        "/api/admin/metrics",
        params={
            "start": (now - timedelta(days=2)).isoformat(),
            "end": (now - timedelta(days=1)).isoformat(),
        },
    ).json()
    assert before["payments"]["attempts"] == 0
    assert before["payments"]["success_rate"] is None

    series = api.get("/api/admin/metrics/mrr", params={"months": 3}).json()
    assert len(series["months"]) == 3
    assert series["months"][-1]["mrr_end"] == 999
    assert series["months"][0]["mrr_start"] == 0


def test_metrics_input_errors(api: httpx.Client) -> None:
    now = datetime.now(UTC).isoformat()
    response = api.get("/api/admin/metrics", params={"start": now, "end": now})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "start"
    assert api.get("/api/admin/metrics", params={"currency": "dollars"}).status_code == 422
    assert api.get("/api/admin/metrics/mrr", params={"months": 0}).status_code == 422


def test_metrics_need_a_token(api: httpx.Client) -> None:
    anonymous = httpx.get(f"{api.base_url}/api/admin/metrics")
    assert anonymous.status_code == 401
