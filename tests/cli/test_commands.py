"""The command line as a user meets it: help, config check, refusal to start."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from tests.test_settings import PK_TEST, SK_LIVE, SK_TEST, WHSEC


def all_commands() -> list[list[str]]:
    """Every command and group of the CLI, found by walking the Click tree."""
    import typer

    from paydesk.cli import app

    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = all_commands()


def test_the_cli_has_the_documented_commands() -> None:
    names = {" ".join(command) for command in COMMANDS}
    expected = {"serve", "migrate", "demo", "config check", "sandbox", "plans bootstrap", "doctor"}
    assert expected <= names


def paydesk(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "paydesk", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str]) -> None:
    # In-process through Click's runner: the same parser and help text, without
    # paying an interpreter start per command.
    from typer.testing import CliRunner

    from paydesk.cli import app

    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "--help" in result.output


def test_python_dash_m_paydesk_runs_the_cli() -> None:
    result = paydesk("--help")
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PAYDESK_ENV": "staging", "STRIPE_SECRET_KEY": SK_LIVE}, "STRIPE_SECRET_KEY"),
        ({"PAYDESK_ENV": "production", "STRIPE_SECRET_KEY": SK_TEST}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": PK_TEST}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": SK_TEST, "STRIPE_WEBHOOK_SECRET": SK_TEST}, "STRIPE_WEBHOOK_SECRET"),
    ],
)
def test_serve_refuses_to_start_and_names_only_the_variable(
    env: dict[str, str], variable: str
) -> None:
    result = paydesk("serve", "--port", "1", env=env)
    assert result.returncode == 2
    assert variable in result.stderr
    output = result.stdout + result.stderr
    for value in env.values():
        if value.startswith(("sk_", "pk_", "rk_", "whsec_")):
            assert value not in output
    assert "Uvicorn running" not in output


def test_config_check_masks_secrets_and_shows_mode_and_api_version() -> None:
    env = {
        "STRIPE_SECRET_KEY": SK_TEST,
        "STRIPE_PUBLISHABLE_KEY": PK_TEST,
        "STRIPE_WEBHOOK_SECRET": WHSEC,
        "PAYDESK_DATABASE_URL": "postgresql://paydesk:Hunter2Secret@db.internal/paydesk",
    }
    result = paydesk("config", "check", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for secret in (SK_TEST, PK_TEST, WHSEC, "Hunter2Secret"):
        assert secret not in out
    assert "sk_test_****" in out
    assert "whsec_****" in out
    assert "2026-10-28.endive" in out
    assert "test" in out


def test_migrate_creates_the_database(tmp_path: os.PathLike[str]) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    result = paydesk("migrate", env={"PAYDESK_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "database at revision" in result.stdout


def test_serve_with_several_workers_answers(tmp_path: os.PathLike[str]) -> None:
    import json
    import signal
    import time

    import httpx

    from tests.support.servers import free_port

    url = f"sqlite:///{tmp_path}/workers.db"
    assert paydesk("migrate", env={"PAYDESK_DATABASE_URL": url}).returncode == 0
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    env["PAYDESK_DATABASE_URL"] = url
    env["PAYDESK_LOG_FORMAT"] = "json"
    log_path = os.path.join(tmp_path, "serve.log")
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "paydesk", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180  # imports are slow on a loaded machine
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve --workers 2 never answered"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["status"] == "ready"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    # One access line per request, Paydesk's own (each worker process configures
    # logging again; uvicorn's access log must stay off there too).
    with open(log_path, encoding="utf-8") as log_file:
        lines = [json.loads(line) for line in log_file if line.startswith("{")]
    readyz = [line for line in lines if "/readyz" in json.dumps(line)]
    assert [line["event"] for line in readyz] == ["request"], readyz
