"""PAYDESK_STRIPE_DEBUG=1 logs each Stripe call: method, path, status, request id, duration."""

from __future__ import annotations

import io
import json

from paydesk.logs import configure_logging
from paydesk.settings import load_settings
from paydesk.stripe_gateway import build_gateway
from paydesk.stripe_gateway.http import StripeCall, route_template
from tests.support.stack import TEST_SECRET_KEY, Stack, stack_environment


def test_debug_log_lines_carry_the_call_and_no_secret(stack: Stack) -> None:
    env = stack_environment(stack.sandbox.url, "sqlite://") | {"PAYDESK_STRIPE_DEBUG": "1"}
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    seen: list[StripeCall] = []
    gateway = build_gateway(load_settings(env), observers=[seen.append])
    customer = gateway.create_customer(email="a@example.com", name=None, metadata={}, key="k-1")
    gateway.retrieve_customer(customer["id"])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    calls = [line for line in lines if line["event"] == "stripe_request"]
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("POST", "/v1/customers", 200),
        ("GET", "/v1/customers/{id}", 200),
    ]
    assert all(c["request_id"].startswith("req_") and c["duration_ms"] >= 0 for c in calls)
    assert TEST_SECRET_KEY not in stream.getvalue()
    assert [call.route for call in seen] == ["/v1/customers", "/v1/customers/{id}"]


def test_without_debug_nothing_is_logged_but_observers_still_see_calls(stack: Stack) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    seen: list[StripeCall] = []
    gateway = build_gateway(stack.settings, observers=[seen.append])
    gateway.prices_by_lookup_keys(["paydesk_free_monthly"])
    assert "stripe_request" not in stream.getvalue()
    assert [(call.method, call.route) for call in seen] == [("GET", "/v1/prices")]


def test_route_templates_hide_ids() -> None:
    assert route_template("/v1/payment_intents/pi_3MtwBwLkdIwHu7ix/confirm") == (
        "/v1/payment_intents/{id}/confirm"
    )
    assert route_template("/v1/test_helpers/test_clocks/clock_1Abc23/advance") == (
        "/v1/test_helpers/test_clocks/{id}/advance"
    )
