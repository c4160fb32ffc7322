"""``paydesk worker``'s metrics options: help, where the port comes from, refusals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from paydesk.cli import app
from tests.support.servers import free_port
from tests.support.waiting import poll


def environment(**env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    clean.update(env)
    return clean


def test_help_describes_the_metrics_options() -> None:
    result = CliRunner().invoke(app, ["worker", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # Rich draws the options in a box and wraps them at spaces.
    text = " ".join(result.output.replace("│", " ").split())
    for expected in (
        "--metrics-port",
        "PAYDESK_WORKER_METRICS_PORT",
        "Default: the setting PAYDESK_WORKER_METRICS_PORT (unset: not served)",
        "PAYDESK_METRICS_TOKEN",
        "--metrics-host",
        "PAYDESK_HOST",
    ):
        assert expected in text, expected


@pytest.mark.parametrize("source", ["setting", "option"])
def test_the_port_comes_from_the_option_or_else_the_setting(tmp_path: Path, source: str) -> None:
    port = free_port()
    env = environment(PAYDESK_DATABASE_URL=f"sqlite:///{tmp_path / 'paydesk.db'}")
    argv = [sys.executable, "-m", "paydesk", "worker", "--idle", "0.1"]
    if source == "setting":
        env["PAYDESK_WORKER_METRICS_PORT"] = str(port)
    else:
        env["PAYDESK_WORKER_METRICS_PORT"] = str(free_port())  # the option wins
        argv += ["--metrics-port", str(port)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def answers() -> bool:
            assert proc.poll() is None, "the worker exited"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        poll(answers, timeout=90, what="/healthz")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0


def run_worker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paydesk", "worker", "--once", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_malformed_port_setting_is_a_configuration_error(tmp_path: Path) -> None:
    env = environment(
        PAYDESK_DATABASE_URL=f"sqlite:///{tmp_path / 'paydesk.db'}",
        PAYDESK_WORKER_METRICS_PORT="70000",
    )
    result = run_worker(env)
    assert result.returncode == 2
    assert "PAYDESK_WORKER_METRICS_PORT: expected a TCP port" in result.stderr


def test_a_port_in_use_stops_the_worker_before_it_works(tmp_path: Path) -> None:
    env = environment(PAYDESK_DATABASE_URL=f"sqlite:///{tmp_path / 'paydesk.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_worker(env, "--metrics-port", str(port))
    assert result.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "applied" not in result.stdout
