"""The gateway against a faulty Stripe: timeouts, rate limits, clear errors."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from paydesk.errors import ConfigurationError, StripeUnavailable
from paydesk.settings import load_settings
from paydesk.stripe_gateway import build_gateway
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.stripe_gateway.http import retry_after
from tests.support.stack import Stack, stack_environment


def set_faults(stack: Stack, **data: str) -> None:
    response = httpx.put(f"{stack.sandbox.url}/_sandbox/faults", data=data)
    assert response.status_code == 200, response.text


def fault_counts(stack: Stack) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{stack.sandbox.url}/_sandbox/faults").json()["counts"]
    return counts


def customers_at_stripe(stack: Stack) -> int:
    return len(stack.sandbox.state.objects.get("customer", {}))


def test_timeout_is_a_setting() -> None:
    assert load_settings({}).stripe_timeout_seconds == 30.0
    assert load_settings({"PAYDESK_STRIPE_TIMEOUT_SECONDS": "1.5"}).stripe_timeout_seconds == 1.5
    for bad in ("0", "-1", "soon", "nan", "601"):
        with pytest.raises(ConfigurationError) as refused:
            load_settings({"PAYDESK_STRIPE_TIMEOUT_SECONDS": bad})
        assert refused.value.variable == "PAYDESK_STRIPE_TIMEOUT_SECONDS"


def test_timeouts_use_the_setting_and_stay_one_operation(stack: Stack) -> None:
    env = stack_environment(stack.sandbox.url, "sqlite://")
    gateway = build_gateway(load_settings(env | {"PAYDESK_STRIPE_TIMEOUT_SECONDS": "0.5"}))
    set_faults(stack, share="1", kinds="timeout", hold_seconds="5")
    key = operation_key("customer", "timeout-test")
    started = time.monotonic()
    with pytest.raises(StripeUnavailable) as unavailable:
        gateway.create_customer(email="t@example.com", name=None, metadata={}, key=key)
    # 4 attempts of 0.5 s plus the SDK's backoff, far below the 5 s hold or 30 s default.
    assert time.monotonic() - started < 20
    assert unavailable.value.code == "stripe_unreachable"
    assert "applied at most once" in unavailable.value.message
    assert fault_counts(stack)["timeout"] == 4  # the first try and 3 retries
    assert customers_at_stripe(stack) == 1  # applied once, every retry was a replay
    set_faults(stack, share="0")
    again = gateway.create_customer(email="t@example.com", name=None, metadata={}, key=key)
    assert again["id"] == next(iter(stack.sandbox.state.objects["customer"]))
    assert customers_at_stripe(stack) == 1


def test_dropped_answers_are_retried_into_the_original(stack: Stack) -> None:
    set_faults(stack, share="0.5", seed="11", kinds="drop_after_apply,500")
    for i in range(6):
        key = operation_key("customer", "drop", i)
        stack.gateway.create_customer(email=f"d{i}@example.com", name=None, metadata={}, key=key)
    assert sum(fault_counts(stack).values()) >= 1
    assert customers_at_stripe(stack) == 6


def _seed_failing_once(share: float) -> int:
    """A seed whose first draw faults and second does not (one kind: no choice draw)."""
    for seed in range(1000):
        draws = random.Random(seed)  # the same draws as the sandbox makes
        if draws.random() < share <= draws.random():
            return seed
    raise AssertionError("no seed found")


def test_a_429_is_retried_after_retry_after(stack: Stack) -> None:
    seed = _seed_failing_once(0.5)
    set_faults(stack, share="0.5", seed=str(seed), kinds="429", retry_after="1", methods="POST")
    started = time.monotonic()
    created = stack.gateway.create_customer(
        email="r@example.com", name=None, metadata={}, key=operation_key("customer", "429")
    )
    assert time.monotonic() - started >= 1.0  # waited as told
    assert created["email"] == "r@example.com"
    assert fault_counts(stack)["429"] == 1


def test_a_429_that_persists_is_a_clear_error(stack: Stack) -> None:
    set_faults(stack, share="1", kinds="429", retry_after="0")
    with pytest.raises(StripeUnavailable) as limited:
        stack.gateway.create_customer(
            email="r@example.com", name=None, metadata={}, key=operation_key("customer", "x")
        )
    assert limited.value.code == "stripe_rate_limited"
    assert "nothing was changed" in limited.value.message
    assert limited.value.details["stripe_request_id"].startswith("req_")
    assert fault_counts(stack)["429"] == 3  # the first try and 2 waits
    assert customers_at_stripe(stack) == 0


def test_a_long_retry_after_is_not_waited_for(stack: Stack) -> None:
    set_faults(stack, share="1", kinds="429", retry_after="60")
    started = time.monotonic()
    with pytest.raises(StripeUnavailable):
        stack.gateway.retrieve_customer("cus_nope")
    assert time.monotonic() - started < 5
    assert fault_counts(stack)["429"] == 1


def test_retry_after_parsing() -> None:
    assert retry_after({"Retry-After": "2"}) == 2.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after({"Retry-After": "-1"}) is None
    assert retry_after({}) is None
