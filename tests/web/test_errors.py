"""Every error, whatever raised it, reaches the client in one shape."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from paydesk import errors
from paydesk.settings import load_settings
from paydesk.web import create_app
from paydesk.web.errors import status_for
from tests.support.servers import serve_in_thread


class Payment(BaseModel):
    amount: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)


RAISED = {
    "invalid": errors.InvalidInput("amount must be positive", field="amount"),
    "missing": errors.NotFound("No such payment: pi_x", code="payment_not_found"),
    "conflict": errors.Conflict("already refunded"),
    "auth": errors.AuthenticationRequired("sign in"),
    "forbidden": errors.PermissionDenied("finance role needed"),
    "declined": errors.PaymentFailed("Your card was declined.", code="card_declined"),
    "slow": errors.RateLimited("too many"),
    "stripe": errors.StripeUnavailable("Stripe unreachable"),
}


def build_app(database_url: str) -> FastAPI:
    app = create_app(load_settings({"PAYDESK_DATABASE_URL": database_url}))

    @app.post("/test/payments")
    def create(payment: Payment) -> dict[str, int]:
        return {"amount": payment.amount}

    @app.get("/test/raise/{name}")
    def raise_named(name: str) -> None:
        raise RAISED[name]

    @app.get("/test/database-down")
    def database_down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    @app.get("/test/bug")
    def bug() -> None:
        raise RuntimeError("boom")

    return app


@pytest.fixture
def base(migrated_url: str) -> Iterator[str]:
    with serve_in_thread(build_app(migrated_url)) as url:
        yield url


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field", "request_id"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return dict(error)


def test_unknown_route(base: str) -> None:
    error = assert_error_shape(httpx.get(f"{base}/nope"), 404, "not_found")
    assert "/nope" in str(error["message"])


def test_wrong_method(base: str) -> None:
    assert_error_shape(httpx.delete(f"{base}/healthz"), 405, "method_not_allowed")


def test_malformed_json(base: str) -> None:
    response = httpx.post(
        f"{base}/test/payments", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error_shape(response, 400, "malformed_json")


def test_validation_error_names_the_field(base: str) -> None:
    response = httpx.post(f"{base}/test/payments", json={"amount": -5, "currency": "usd"})
    error = assert_error_shape(response, 422, "invalid_input")
    assert error["field"] == "amount"


def test_missing_field_is_named(base: str) -> None:
    response = httpx.post(f"{base}/test/payments", json={"amount": 5})
    assert assert_error_shape(response, 422, "invalid_input")["field"] == "currency"


@pytest.mark.parametrize("name", sorted(RAISED))
def test_domain_errors_map_to_their_status(base: str, name: str) -> None:
    raised = RAISED[name]
    error = assert_error_shape(
        httpx.get(f"{base}/test/raise/{name}"), status_for(raised), raised.code
    )
    assert error["message"] == raised.message
    assert error["field"] == raised.field


def test_status_table() -> None:
    assert [status_for(RAISED[name]) for name in sorted(RAISED)] == [
        401, 409, 402, 403, 422, 404, 429, 503,
    ]  # fmt: skip


def test_database_outage_is_503_with_retry_after(base: str) -> None:
    response = httpx.get(f"{base}/test/database-down")
    assert_error_shape(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "5"


def test_unexpected_error_is_500_without_details(base: str) -> None:
    response = httpx.get(f"{base}/test/bug")
    error = assert_error_shape(response, 500, "internal_error")
    assert "boom" not in response.text
    assert error["field"] is None


def test_incoming_request_id_is_kept_when_sane(base: str) -> None:
    kept = httpx.get(f"{base}/healthz", headers={"x-request-id": "client-abc-12345"})
    assert kept.headers["x-request-id"] == "client-abc-12345"
    replaced = httpx.get(f"{base}/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"].startswith("req_")
