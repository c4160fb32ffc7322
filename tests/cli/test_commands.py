"""The command line as a user meets it: help, config check, refusal to start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.test_settings import PK_TEST, SK_LIVE, SK_TEST, WHSEC

COMMANDS = [[], ["serve"], ["migrate"], ["demo"], ["config"], ["config", "check"], ["sandbox"]]


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
    result = paydesk(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "--help" in result.stdout


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
