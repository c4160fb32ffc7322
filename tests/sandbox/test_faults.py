"""The sandbox's fault mode over real HTTP, seen by the official SDK."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
import stripe
from sandbox_testkit import TEST_KEY

from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.faults import KINDS, FaultConfig, parse_spec
from paydesk_sandbox.server import RunningSandbox, running_sandbox


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client(url: str, *, timeout: float = 10.0, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        TEST_KEY,
        base_addresses={"api": url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def faults(sandbox: RunningSandbox, method: str = "GET", **data: Any) -> dict[str, Any]:
    response = httpx.request(method, f"{sandbox.url}/_sandbox/faults", data=data or None)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def customers(sandbox: RunningSandbox) -> int:
    return len(sandbox.state.objects.get("customer", {}))


def test_faults_are_off_by_default(sandbox: RunningSandbox, stripe_client: stripe.StripeClient):
    for _ in range(20):
        stripe_client.v1.customers.create({"email": "a@example.com"})
    state = faults(sandbox)
    assert (state["share"], state["injected"]) == (0, 0)
    assert state["counts"] == dict.fromkeys(KINDS, 0)


def test_500_and_429_are_not_applied(sandbox: RunningSandbox) -> None:
    sdk = client(sandbox.url)
    faults(sandbox, "PUT", share="1", kinds="500")
    with pytest.raises(stripe.APIError) as server_error:
        sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k1"})
    assert server_error.value.http_status == 500
    assert str(server_error.value.request_id).startswith("req_")

    faults(sandbox, "PUT", kinds="429", retry_after="7")
    with pytest.raises(stripe.RateLimitError) as limited:
        sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k1"})
    assert (limited.value.json_body or {})["error"]["code"] == "rate_limit"
    assert (limited.value.headers or {})["Retry-After"] == "7"
    assert customers(sandbox) == 0

    last = faults(sandbox, "DELETE")
    assert (last["counts"]["500"], last["counts"]["429"], last["injected"]) == (1, 1, 2)
    created = sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k1"})
    assert created.last_response.headers.get("idempotent-replayed") is None  # really new
    assert customers(sandbox) == 1
    assert faults(sandbox)["injected"] == 0  # DELETE cleared the counters


def test_drop_after_apply_then_retry_replays_the_original(sandbox: RunningSandbox) -> None:
    sdk = client(sandbox.url)
    faults(sandbox, "PUT", share="1", kinds="drop_after_apply")
    with pytest.raises(stripe.APIConnectionError):
        sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "drop-1"})
    assert customers(sandbox) == 1  # applied, but the client never heard
    faults(sandbox, "DELETE")
    again = sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "drop-1"})
    assert again.last_response.headers["idempotent-replayed"] == "true"
    assert again.id == next(iter(sandbox.state.objects["customer"]))
    assert customers(sandbox) == 1


def test_timeout_holds_the_answer_past_the_client_timeout(sandbox: RunningSandbox) -> None:
    sdk = client(sandbox.url, timeout=0.5)
    faults(sandbox, "PUT", share="1", kinds="timeout", hold_seconds="5")
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError) as timed_out:
        sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "slow-1"})
    assert "Timeout" in str(timed_out.value)
    assert time.monotonic() - started < 3
    assert customers(sandbox) == 1  # applied before the answer was held
    faults(sandbox, "DELETE")
    again = sdk.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "slow-1"})
    assert again.last_response.headers["idempotent-replayed"] == "true"
    assert customers(sandbox) == 1


def test_sdk_retries_through_faults_make_one_object_each(sandbox: RunningSandbox) -> None:
    sdk = client(sandbox.url, timeout=0.5, retries=8)
    # The SDK does not retry 429s by itself (Paydesk's gateway does, after Retry-After).
    kinds = "500,timeout,drop_after_apply"
    faults(sandbox, "PUT", share="0.5", seed="3", kinds=kinds, hold_seconds="2")
    for i in range(8):
        sdk.v1.customers.create({"email": f"c{i}@example.com"}, {"idempotency_key": f"c-{i}"})
    state = faults(sandbox)
    assert state["injected"] >= 1
    assert customers(sandbox) == 8
    emails = sorted(c["email"] for c in sandbox.state.objects["customer"].values())
    assert emails == [f"c{i}@example.com" for i in range(8)]


def test_a_seed_makes_the_draws_repeatable(sandbox: RunningSandbox) -> None:
    def run() -> dict[str, int]:
        faults(sandbox, "DELETE")
        faults(sandbox, "PUT", share="0.5", seed="42", kinds="500,429")
        sdk = client(sandbox.url)
        for _ in range(30):
            with contextlib.suppress(stripe.StripeError):
                sdk.v1.balance.retrieve()
        counts: dict[str, int] = faults(sandbox)["counts"]
        return counts

    first = run()
    assert min(first["500"], first["429"]) > 0
    assert first["timeout"] == first["drop_after_apply"] == 0
    assert run() == first


def test_path_filter_and_sandbox_routes_are_never_faulted(sandbox: RunningSandbox) -> None:
    sdk = client(sandbox.url)
    faults(sandbox, "PUT", share="1", kinds="500", path="/v1/refunds")
    sdk.v1.customers.create({"email": "a@example.com"})  # not under /v1/refunds
    assert httpx.get(f"{sandbox.url}/_sandbox/deliveries").status_code == 200
    with pytest.raises(stripe.APIError):
        sdk.v1.refunds.list()
    state = faults(sandbox)
    assert (state["requests"], state["injected"], state["path"]) == (1, 1, "/v1/refunds")

    faults(sandbox, "PUT", path="/v1/customers", methods="post")
    sdk.v1.customers.list()  # a GET: not faulted
    with pytest.raises(stripe.APIError):
        sdk.v1.customers.create({"email": "b@example.com"})
    assert faults(sandbox)["methods"] == ["POST"]
    assert faults(sandbox)["injected"] == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"share": "1.5"}, "share must be between 0 and 1"),
        ({"kinds": "500,teapot"}, "unknown kind"),
        ({"share": "lots"}, "bad value for share"),
        ({"path": "/_sandbox/reset"}, "path must start with /v1"),
        ({"color": "red"}, "unknown parameter: color"),
    ],
)
def test_bad_settings_are_refused(sandbox: RunningSandbox, data: dict[str, str], message: str):
    response = httpx.put(f"{sandbox.url}/_sandbox/faults", data=data)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert faults(sandbox)["share"] == 0


def test_configured_at_start() -> None:
    config = SandboxConfig(faults=FaultConfig(share=1.0, kinds=("429",), retry_after=2))
    with running_sandbox(config) as sandbox:
        with pytest.raises(stripe.RateLimitError):
            client(sandbox.url).v1.customers.create({"email": "a@example.com"})
        assert faults(sandbox)["counts"]["429"] == 1


def test_spec_strings() -> None:
    assert parse_spec("") == FaultConfig()
    assert parse_spec("0.3") == FaultConfig(share=0.3)
    parsed = parse_spec("share=0.2;kinds=timeout,drop_after_apply;seed=7;path=/v1/refunds;hold=4")
    assert parsed == FaultConfig(
        share=0.2,
        kinds=("timeout", "drop_after_apply"),
        seed=7,
        path="/v1/refunds",
        hold_seconds=4.0,
    )
    assert parse_spec("share=1 kinds=all").kinds == KINDS
    with pytest.raises(ValueError, match="unknown setting"):
        parse_spec("shares=0.1")


def test_cli_takes_the_fault_mode_from_the_environment() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PAYDESK_SANDBOX_FAULTS": "share=1;kinds=429;retry_after=3"}
    command = [sys.executable, "-m", "paydesk", "sandbox", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60  # a loaded machine starts Python slowly
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            try:
                state = httpx.get(f"{url}/_sandbox/faults", timeout=0.5).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "paydesk sandbox did not start"
                time.sleep(0.1)
        assert (state["share"], state["kinds"], state["retry_after"]) == (1.0, ["429"], 3)
        with pytest.raises(stripe.RateLimitError):
            client(url).v1.customers.create({"email": "a@example.com"})
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert b"Fault mode on: 100% of /v1 requests fail (429)" in (
        proc.stdout.read() if proc.stdout else b""
    )


def test_cli_refuses_a_bad_fault_spec() -> None:
    command = [sys.executable, "-m", "paydesk", "sandbox", "--faults", "share=2"]
    done = subprocess.run(command, capture_output=True, timeout=30, check=False)
    assert done.returncode != 0
    assert b"share must be between 0 and 1" in done.stderr
