"""``paydesk demo`` as a newcomer meets it: one command, then the API works end to end."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port


def wait_for(url: str, deadline_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            response = httpx.get(url)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered 200"
        time.sleep(0.2)


def printed_token(lines: list[str], deadline_s: float = 60) -> str:
    """The API token the demo prints on its first run (the README's curl lines use it)."""
    deadline = time.monotonic() + deadline_s
    while True:
        for line in list(lines):
            if "API token:" in line and "TOKEN=" in line:
                return line.split("TOKEN=", 1)[1].split()[0]
        assert time.monotonic() < deadline, "the demo printed no API token"
        time.sleep(0.1)


@pytest.mark.timeout(600)
def test_demo_serves_the_api_on_the_sandbox_with_webhooks(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paydesk",
            "demo",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        assert wait_for(f"{base}/readyz").json()["status"] == "ready"
        # The Admin API needs an admin's token, as everywhere: the demo prints one.
        auth = {"Authorization": f"Bearer {printed_token(lines)}"}
        # The demo seeds its history in the background meanwhile: on a loaded CI machine
        # an answer can take longer than httpx's default 5 s.
        slow = httpx.Timeout(60.0)
        created = httpx.post(
            f"{base}/api/admin/customers",
            timeout=slow,
            json={"user_id": "demo-user", "email": "d@example.com"},
            headers=auth,
        )
        assert created.status_code == 200, created.text
        customer = created.json()["id"]
        paid = httpx.post(
            f"{base}/api/admin/payments",
            timeout=slow,
            json={
                "customer": customer,
                "amount": 2500,
                "currency": "usd",
                "payment_method": "pm_card_visa",
            },
            headers=auth,
        ).json()["payment"]
        assert paid["status"] == "succeeded"
        refund = httpx.post(
            f"{base}/api/admin/payments/{paid['id']}/refunds",
            json={"amount": 500},
            headers=auth,
            timeout=slow,
        )
        assert refund.status_code == 201
        sub = httpx.post(
            f"{base}/api/admin/subscriptions",
            timeout=slow,
            json={"customer": customer, "tier": "premium", "payment_method": "pm_card_visa"},
            headers=auth,
        )
        assert sub.json()["subscription"]["status"] == "active"
        # The sandbox delivers signed webhooks to the demo, whose worker applies them.
        database = tmp_path / "var" / "paydesk.db"
        # Generous: the worker applies the seeded history (~4,000 events) first, and a
        # loaded CI machine is slow.
        deadline = time.monotonic() + 300
        while True:
            with sqlite3.connect(database) as connection:
                rows = dict(connection.execute("SELECT type, status FROM stripe_events").fetchall())
            if (
                rows.get("charge.refunded") == "processed"
                and rows.get("customer.subscription.created") == "processed"
            ):
                break
            assert time.monotonic() < deadline, f"events not processed: {rows}"
            time.sleep(0.2)
        # The printed portal link opens the demo customer's billing portal, once.
        portal = next(line for line in lines if "Portal:" in line).split()[1]
        assert portal.startswith(f"{base}/portal/session/")
        with httpx.Client(base_url=base, timeout=slow) as customer:
            assert customer.get(portal).status_code == 303
            assert "Plans" in customer.get("/portal/").text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
    output = "".join(lines)
    assert f"API:            {base}" in output
    assert "sk_test_demo" not in output
    assert (tmp_path / "var" / "sandbox-state.json").exists(), "the sandbox keeps its state"


def _start_demo(cwd: Path, port: int, sandbox_port: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    argv = ["demo", "--no-seed", "--port", str(port), "--sandbox-port", str(sandbox_port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "paydesk", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
    wait_for(f"http://127.0.0.1:{port}/readyz")
    return process, lines


def _sandbox_objects(sandbox_port: int, kind: str) -> list[dict[str, object]]:
    key = json.loads((Path("var") / "demo.json").read_text())["STRIPE_SECRET_KEY"]
    response = httpx.get(f"http://127.0.0.1:{sandbox_port}/v1/{kind}", auth=(key, ""))
    return list(response.json()["data"])


def test_sigterm_keeps_the_sandbox_and_a_lost_snapshot_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    port, sandbox_port = free_port(), free_port()
    snapshot = tmp_path / "var" / "sandbox-state.json"

    process, lines = _start_demo(tmp_path, port, sandbox_port)
    key = json.loads((tmp_path / "var" / "demo.json").read_text())["STRIPE_SECRET_KEY"]
    customer = httpx.post(
        f"http://127.0.0.1:{sandbox_port}/v1/customers",
        data={"email": "kept@example.com"},
        auth=(key, ""),
    ).json()
    endpoints = _sandbox_objects(sandbox_port, "webhook_endpoints")
    prices = {p["id"] for p in _sandbox_objects(sandbox_port, "prices")}
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    saved = json.loads(snapshot.read_bytes())
    assert customer["id"] in saved["objects"]["customer"], "SIGTERM saved the sandbox"
    assert not list((tmp_path / "var").glob("*.tmp"))

    process, lines = _start_demo(tmp_path, port, sandbox_port)
    try:
        assert _sandbox_objects(sandbox_port, "webhook_endpoints") == endpoints
        assert {p["id"] for p in _sandbox_objects(sandbox_port, "prices")} == prices
        ids = {c["id"] for c in _sandbox_objects(sandbox_port, "customers")}
        assert customer["id"] in ids
        assert not any("missing or stale" in line for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)

    snapshot.unlink()
    process, lines = _start_demo(tmp_path, port, sandbox_port)
    try:
        (endpoint,) = _sandbox_objects(sandbox_port, "webhook_endpoints")
        assert endpoint["url"] == f"http://127.0.0.1:{port}/api/webhooks/stripe"
        assert len(_sandbox_objects(sandbox_port, "prices")) == 3
        assert any("missing or stale" in line for line in lines), lines
        # The new endpoint's secret is the one the demo verifies with: events arrive.
        httpx.post(
            f"http://127.0.0.1:{sandbox_port}/v1/customers",
            data={"email": "new@example.com"},
            auth=(key, ""),
        )
        database = tmp_path / "var" / "paydesk.db"
        deadline = time.monotonic() + 60
        while True:
            with sqlite3.connect(database) as connection:
                types = {t for (t,) in connection.execute("SELECT type FROM stripe_events")}
            if "customer.created" in types:
                break
            assert time.monotonic() < deadline, types
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert snapshot.exists()
