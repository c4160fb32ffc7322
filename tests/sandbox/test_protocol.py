"""The HTTP protocol: auth, parameters, errors, headers, pagination, idempotency."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import stripe
from sandbox_testkit import TEST_KEY, make_client


def test_missing_key_is_401(sandbox_url: str) -> None:
    response = httpx.get(f"{sandbox_url}/v1/customers")
    assert response.status_code == 401
    assert "did not provide an API key" in response.json()["error"]["message"]


def test_bad_key_raises_authentication_error(sandbox_url: str) -> None:
    client = make_client(sandbox_url, key="pk_test_" + "y" * 24)
    with pytest.raises(stripe.AuthenticationError):
        client.v1.customers.list()


def test_live_key_is_refused(sandbox_url: str) -> None:
    client = make_client(sandbox_url, key="sk_live_" + "y" * 24)
    with pytest.raises(stripe.AuthenticationError, match="test mode keys only"):
        client.v1.customers.list()


def test_restricted_test_key_is_accepted(sandbox_url: str) -> None:
    client = make_client(sandbox_url, key="rk_test_" + "y" * 24)
    assert client.v1.customers.list().data == []


def test_unknown_parameter(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.customers.create(params={"colour": "blue"})  # type: ignore[typeddict-unknown-key]
    assert info.value.code == "parameter_unknown"
    assert info.value.param == "colour"
    assert info.value.http_status == 400


def test_missing_parameter(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.payment_intents.create(params={"currency": "usd"})  # type: ignore[typeddict-item]
    assert info.value.code == "parameter_missing"
    assert info.value.param == "amount"


def test_bad_id_is_resource_missing(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.customers.retrieve("cus_doesnotexist")
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"
    assert info.value.param == "id"
    assert "No such customer: 'cus_doesnotexist'" in str(info.value)


def test_unrecognized_url_is_404(sandbox_url: str) -> None:
    response = httpx.get(f"{sandbox_url}/v1/nothing_here", headers=_auth())
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["error"]["message"]


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TEST_KEY}"}


def test_headers_and_error_body(sandbox_url: str) -> None:
    response = httpx.get(f"{sandbox_url}/v1/customers/cus_nope", headers=_auth())
    assert response.headers["stripe-version"] == "2026-10-28.endive"
    request_id = response.headers["request-id"]
    assert request_id.startswith("req_")
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["request_log_url"].startswith(
        f"https://dashboard.stripe.com/test/logs/{request_id}?t="
    )


def test_request_id_reaches_the_sdk(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.customers.retrieve("cus_nope")
    assert info.value.request_id is not None
    assert info.value.request_id.startswith("req_")


def test_nested_params_and_metadata(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(
        params={
            "name": "Jenny Rosen",
            "address": {"line1": "510 Townsend St", "city": "San Francisco", "country": "US"},
            "preferred_locales": ["en", "fr"],
            "metadata": {"a": "1", "b": "2"},
        }
    )
    assert customer.address is not None
    assert customer.address.city == "San Francisco"
    assert customer.preferred_locales == ["en", "fr"]
    updated = stripe_client.v1.customers.update(customer.id, params={"metadata": {"a": ""}})
    assert updated.metadata.to_dict() == {"b": "2"}


def test_pagination_newest_first(stripe_client: stripe.StripeClient) -> None:
    ids = [stripe_client.v1.customers.create(params={"name": f"c{i}"}).id for i in range(5)]
    newest_first = list(reversed(ids))
    page = stripe_client.v1.customers.list(params={"limit": 2})
    assert [c.id for c in page.data] == newest_first[:2]
    assert page.has_more is True
    assert page.url == "/v1/customers"
    page2 = stripe_client.v1.customers.list(params={"limit": 2, "starting_after": ids[3]})
    assert [c.id for c in page2.data] == newest_first[2:4]
    before = stripe_client.v1.customers.list(params={"limit": 2, "ending_before": ids[1]})
    assert [c.id for c in before.data] == newest_first[1:3]
    everything = [c.id for c in stripe_client.v1.customers.list().auto_paging_iter()]
    assert everything == newest_first


def test_limit_out_of_range(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.customers.list(params={"limit": 101})
    assert info.value.param == "limit"


def test_idempotent_replay(sandbox_url: str) -> None:
    headers = {**_auth(), "Idempotency-Key": "key-1"}
    first = httpx.post(f"{sandbox_url}/v1/customers", data={"name": "A"}, headers=headers)
    second = httpx.post(f"{sandbox_url}/v1/customers", data={"name": "A"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = httpx.get(f"{sandbox_url}/v1/customers", headers=_auth()).json()
    assert len(listed["data"]) == 1


def test_idempotency_key_with_other_params(stripe_client: stripe.StripeClient) -> None:
    options = {"idempotency_key": "same-key"}
    stripe_client.v1.customers.create(params={"name": "A"}, options=options)  # type: ignore[arg-type]
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.customers.create(params={"name": "B"}, options=options)  # type: ignore[arg-type]


def test_idempotent_replay_of_a_decline(sandbox_url: str) -> None:
    headers = {**_auth(), "Idempotency-Key": "decline-1"}
    data = {
        "amount": "2000",
        "currency": "usd",
        "payment_method": "pm_card_chargeDeclined",
        "payment_method_types[0]": "card",
        "confirm": "true",
    }
    first = httpx.post(f"{sandbox_url}/v1/payment_intents", data=data, headers=headers)
    second = httpx.post(f"{sandbox_url}/v1/payment_intents", data=data, headers=headers)
    assert first.status_code == second.status_code == 402
    assert first.content == second.content
    intents = httpx.get(f"{sandbox_url}/v1/payment_intents", headers=_auth()).json()
    assert len(intents["data"]) == 1


def test_expand(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(params={"email": "x@example.com"})
    intent = stripe_client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
            "expand": ["customer", "latest_charge", "payment_method"],
        }
    )
    assert isinstance(intent.customer, stripe.Customer)
    assert intent.customer.email == "x@example.com"
    assert isinstance(intent.latest_charge, stripe.Charge)
    assert intent.latest_charge.amount == 1000
    assert isinstance(intent.payment_method, stripe.PaymentMethod)
    page = stripe_client.v1.payment_intents.list(params={"expand": ["data.customer"]})
    assert page.data[0].customer.id == customer.id  # type: ignore[union-attr]
    nested = stripe_client.v1.charges.retrieve(
        intent.latest_charge.id, params={"expand": ["payment_intent.customer"]}
    )
    assert nested.payment_intent.customer.email == "x@example.com"  # type: ignore[union-attr]
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        stripe_client.v1.customers.retrieve(customer.id, params={"expand": ["email"]})


def test_reset(sandbox_url: str, stripe_client: stripe.StripeClient) -> None:
    stripe_client.v1.customers.create()
    assert httpx.post(f"{sandbox_url}/_sandbox/reset").status_code == 200
    assert stripe_client.v1.customers.list().data == []
    assert stripe_client.v1.events.list().data == []


def test_instances_are_independent(sandbox_url: str) -> None:
    from paydesk_sandbox.server import running_sandbox

    with running_sandbox() as other:
        assert other.url != sandbox_url
        make_client(other.url).v1.customers.create()
        assert make_client(sandbox_url).v1.customers.list().data == []
        assert len(make_client(other.url).v1.customers.list().data) == 1


def test_basic_auth_like_curl(sandbox_url: str) -> None:
    response = httpx.get(f"{sandbox_url}/v1/customers", auth=(TEST_KEY, ""))
    assert response.status_code == 200


def test_stripe_version_header_is_echoed(sandbox_url: str) -> None:
    headers = {**_auth(), "Stripe-Version": "2025-03-31.basil"}
    response = httpx.get(f"{sandbox_url}/v1/customers", headers=headers)
    assert response.headers["stripe-version"] == "2025-03-31.basil"


def test_idempotency_key_is_ignored_on_get(sandbox_url: str) -> None:
    headers = {**_auth(), "Idempotency-Key": "k"}
    first = httpx.get(f"{sandbox_url}/v1/customers", headers=headers)
    second = httpx.get(f"{sandbox_url}/v1/customers", headers=headers)
    assert "idempotent-replayed" not in second.headers
    assert first.status_code == second.status_code == 200


def test_a_handler_bug_is_a_stripe_shaped_500() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route

    from paydesk_sandbox.protocol import make_endpoint
    from paydesk_sandbox.routing import Ctx, Router
    from paydesk_sandbox.state import SandboxState

    router = Router()

    @router.post("/v1/broken")
    def broken(ctx: Ctx) -> dict[str, str]:
        raise RuntimeError("bug")

    spec = router.routes[0]
    app = Starlette(
        routes=[Route(spec.path, make_endpoint(spec, SandboxState()), methods=["POST"])]
    )

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            return await client.post("/v1/broken", headers=_auth())

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "api_error"
