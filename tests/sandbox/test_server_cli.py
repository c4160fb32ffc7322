"""``paydesk sandbox`` as a process, and snapshots to a file."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import stripe
from sandbox_testkit import make_client

from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import running_sandbox


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # imports are slow on a loaded machine
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            httpx.get(f"{url}/v1/customers", timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("paydesk sandbox did not start")


def test_cli_serves_and_snapshots(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    snapshot = tmp_path / "state.json"
    command = [
        sys.executable,
        "-m",
        "paydesk",
        "sandbox",
        "--port",
        str(port),
        "--snapshot",
        str(snapshot),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_up(url, proc)
        customer = make_client(url).v1.customers.create(params={"name": "Persisted"})
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert snapshot.exists()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_up(url, proc)
        again = make_client(url).v1.customers.retrieve(customer.id)
        assert again.name == "Persisted"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_cli_help_does_not_import_the_sandbox() -> None:
    code = "import sys; from paydesk.cli import app; print('paydesk_sandbox.app' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == "False"


def test_snapshot_endpoint_and_restore(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    with running_sandbox(SandboxConfig(snapshot_path=path)) as sb:
        client = make_client(sb.url)
        intent = client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "payment_method_types": ["card"],
                "confirm": True,
            }
        )
        assert httpx.post(f"{sb.url}/_sandbox/snapshot").status_code == 200
    with running_sandbox(SandboxConfig(snapshot_path=path)) as sb:
        client = make_client(sb.url)
        restored = client.v1.payment_intents.retrieve(intent.id)
        assert restored.status == "succeeded"
        # The card behind the PaymentMethod is remembered too: refunds still work.
        refund = client.v1.refunds.create(params={"payment_intent": intent.id})
        assert refund.status == "succeeded"


def test_snapshot_without_file_is_an_error(sandbox_url: str) -> None:
    response = httpx.post(f"{sandbox_url}/_sandbox/snapshot")
    assert response.status_code == 400


def test_sandbox_clock(sandbox_url: str, stripe_client: stripe.StripeClient) -> None:
    before = stripe_client.v1.customers.create().created
    httpx.post(f"{sandbox_url}/_sandbox/clock", data={"advance": "86400"}).raise_for_status()
    after = stripe_client.v1.customers.create().created
    assert after - before >= 86400
