"""The app users' billing API over real HTTP: JWT checks and self-service billing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from paydesk.settings import load_settings
from paydesk.web import create_app
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack, stack_environment

SECRET = "app-signing-secret-" + "x" * 24
ISSUER = "https://app.example"
AUDIENCE = "paydesk"


def token(
    user: str = "user-42",
    *,
    key: Any = SECRET,
    algorithm: str = "HS256",
    expires_in: int = 300,
    headers: dict[str, str] | None = None,
    **claims: Any,
) -> str:
    payload = {
        "sub": user,
        "email": f"{user}@example.com",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(time.time()) + expires_in,
        **claims,
    }
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def serve_with(stack: Stack, **env: str):
    full = stack_environment(stack.sandbox.url, stack.settings.database_url.get_secret_value())
    for tier in ("FREE", "PREMIUM", "ENTERPRISE"):
        full[f"STRIPE_PRICE_{tier}"] = str(getattr(stack.settings, f"stripe_price_{tier.lower()}"))
    full.update({"PAYDESK_JWT_ISSUER": ISSUER, "PAYDESK_JWT_AUDIENCE": AUDIENCE, **env})
    return serve_in_thread(create_app(load_settings(full), engine=stack.engine))


@pytest.fixture
def billing(stack: Stack) -> Iterator[httpx.Client]:
    with (
        serve_with(stack, PAYDESK_JWT_SECRET=SECRET) as base,
        httpx.Client(base_url=base) as client,
    ):
        yield client


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_config_is_public(billing: httpx.Client) -> None:
    body = billing.get("/api/billing/config").json()
    assert body["publishable_key"].startswith("pk_test_")
    assert [t["key"] for t in body["tiers"]] == ["free", "premium", "enterprise"]
    assert all(t["price_id"].startswith("price_") for t in body["tiers"])


# Factories, not tokens: a token built at collection time could expire before its test runs.
BAD_TOKENS: dict[str, tuple[Callable[[], str | None], str]] = {
    "missing": (lambda: None, "missing_token"),
    "garbage": (lambda: "not-a-jwt", "invalid_token"),
    "expired": (lambda: token(expires_in=-120), "token_expired"),
    "audience": (lambda: token(aud="someone-else"), "invalid_token"),
    "issuer": (lambda: token(iss="https://evil.example"), "invalid_token"),
    "signature": (lambda: token(key="another-secret-" + "y" * 24), "invalid_token"),
    "unsigned": (
        lambda: jwt.encode(
            {"sub": "u", "aud": AUDIENCE, "iss": ISSUER, "exp": 2**40}, None, algorithm="none"
        ),
        "invalid_token",
    ),
    "no-exp": (lambda: token(exp=None), "invalid_token"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused(billing: httpx.Client, case: str) -> None:
    make, code = BAD_TOKENS[case]
    bad = make()
    headers = auth(bad) if bad else {}
    response = billing.get("/api/billing/subscription", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code


def test_self_service_subscription(billing: httpx.Client, stack: Stack) -> None:
    me = auth(token())
    assert billing.get("/api/billing/subscription", headers=me).json() == {"subscription": None}
    created = billing.post("/api/billing/subscription", json={"tier": "free"}, headers=me)
    assert created.status_code == 201, created.text
    assert created.json()["subscription"]["tier"] == "free"
    up = billing.post(
        "/api/billing/subscription/tier",
        json={"tier": "premium", "payment_method": "pm_card_visa"},
        headers=me,
    )
    assert up.status_code == 200, up.text
    assert up.json()["subscription"]["tier"] == "premium"
    ending = billing.post("/api/billing/subscription/cancel", json={}, headers=me)
    assert ending.json()["subscription"]["cancel_at_period_end"] is True
    resumed = billing.post("/api/billing/subscription/resume", headers=me)
    assert resumed.json()["subscription"]["cancel_at_period_end"] is False
    mine = billing.get("/api/billing/subscription", headers=me).json()["subscription"]
    assert mine["tier"] == "premium"
    # Another user sees none of it.
    other = billing.get("/api/billing/subscription", headers=auth(token("user-7"))).json()
    assert other == {"subscription": None}
    customer = stack.sdk.v1.customers.retrieve(mine["customer_id"])
    assert customer.metadata["paydesk_user_id"] == "user-42"


def test_paid_tier_without_card_returns_a_client_secret(billing: httpx.Client) -> None:
    created = billing.post(
        "/api/billing/subscription", json={"tier": "enterprise"}, headers=auth(token())
    )
    body = created.json()
    assert body["subscription"]["status"] == "incomplete"
    assert "_secret_" in body["client_secret"]


def test_one_off_payment_intent_for_elements(billing: httpx.Client) -> None:
    response = billing.post(
        "/api/billing/payment-intents",
        json={"amount": 1500, "currency": "eur"},
        headers=auth(token()) | {"Idempotency-Key": "checkout-1"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["payment"]["status"] == "requires_payment_method"
    assert body["client_secret"].startswith(body["payment"]["id"])
    invalid = billing.post(
        "/api/billing/payment-intents",
        json={"amount": 1.5, "currency": "eur"},
        headers=auth(token()),
    )
    assert invalid.status_code == 422
    assert invalid.json()["error"]["field"] == "amount"


@pytest.fixture
def jwks_keys() -> Iterator[tuple[Any, str]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    public_jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})

    async def keys(_request: Any) -> JSONResponse:
        return JSONResponse({"keys": [public_jwk]})

    with serve_in_thread(Starlette(routes=[Route("/jwks.json", keys)])) as base:
        yield private, f"{base}/jwks.json"


def test_jwks_signed_tokens(stack: Stack, jwks_keys: tuple[Any, str]) -> None:
    private, url = jwks_keys
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with serve_with(stack, PAYDESK_JWT_JWKS_URL=url) as base:
        good = token(key=private, algorithm="RS256", headers={"kid": "k1"})
        forged = token(key=other, algorithm="RS256", headers={"kid": "k1"})
        hs = token()
        ok = httpx.get(f"{base}/api/billing/subscription", headers=auth(good))
        bad = httpx.get(f"{base}/api/billing/subscription", headers=auth(forged))
        wrong_alg = httpx.get(f"{base}/api/billing/subscription", headers=auth(hs))
    assert ok.status_code == 200, ok.text
    assert bad.status_code == 401
    assert wrong_alg.status_code == 401


def test_unconfigured_app_auth_is_503(stack: Stack) -> None:
    with serve_with(stack) as base:
        response = httpx.get(f"{base}/api/billing/subscription", headers=auth(token()))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "app_auth_not_configured"
