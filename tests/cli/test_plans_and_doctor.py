"""``paydesk plans bootstrap`` and ``paydesk doctor`` against the sandbox, as a user runs them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paydesk.db.migrate import upgrade_to_head
from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import RunningSandbox, running_sandbox
from tests.cli.test_commands import paydesk
from tests.support.stack import stack_environment

WHSEC = "whsec_" + "Doctor1x" * 4


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxConfig(webhook_retry_delays=(0.05,))) as running:
        yield running


def bootstrap(env: dict[str, str]) -> dict[str, str]:
    result = paydesk("plans", "bootstrap", env=env)
    assert result.returncode == 0, result.stderr
    return dict(re.findall(r"^(STRIPE_PRICE_[A-Z]+)=(price_\w+)$", result.stdout, re.M))


def test_bootstrap_is_idempotent_and_prints_price_lines(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = stack_environment(sandbox.url, f"sqlite:///{tmp_path}/x.db")
    first = bootstrap(env)
    assert set(first) == {"STRIPE_PRICE_FREE", "STRIPE_PRICE_PREMIUM", "STRIPE_PRICE_ENTERPRISE"}
    assert bootstrap(env) == first
    prices = {p["lookup_key"]: p["unit_amount"] for p in _prices(sandbox)}
    assert prices == {
        "paydesk_free_monthly": 0,
        "paydesk_premium_monthly": 999,
        "paydesk_enterprise_monthly": 2999,
    }


def _prices(sandbox: RunningSandbox) -> list[dict[str, object]]:
    return list(sandbox.state.store("price").values())


def test_doctor_reports_each_problem_with_a_fix(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = stack_environment(sandbox.url, f"sqlite:///{tmp_path}/doctor.db")
    result = paydesk("doctor", env=env)
    assert result.returncode == 1
    out = result.stdout
    assert "PASS  Stripe key mode: test key in development" in out
    assert "FAIL  Webhook secret" in out
    assert "FAIL  Price STRIPE_PRICE_PREMIUM: not set" in out
    assert "FAIL  Webhook endpoint" in out
    assert "FAIL  Database" in out
    assert "fix: run `paydesk migrate`" in out
    assert env["STRIPE_SECRET_KEY"] not in out + result.stderr


def test_doctor_passes_on_a_complete_setup(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = stack_environment(sandbox.url, f"sqlite:///{tmp_path}/ok.db")
    env.update(bootstrap(env))
    upgrade_to_head(env["PAYDESK_DATABASE_URL"])
    setup = paydesk("webhooks", "setup", "https://paydesk.example/api/webhooks/stripe", env=env)
    assert setup.returncode == 0, setup.stderr
    env["STRIPE_WEBHOOK_SECRET"] = re.findall(r"whsec_\w+", setup.stdout)[0]
    result = paydesk("doctor", env=env)
    assert result.returncode == 0, result.stdout
    assert "FAIL" not in result.stdout
    assert "doctor: 13 checks, 0 failed" in result.stdout
    # The bootstrap's events predate the endpoint: younger than the grace period, so
    # not counted missing yet (the worker's reconciler would backfill them).
    assert "PASS  Webhook events: no events missing (6 checked)" in result.stdout


def test_doctor_shows_the_sandboxs_failing_deliveries(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = stack_environment(sandbox.url, f"sqlite:///{tmp_path}/deliveries.db")
    env.update(bootstrap(env))
    upgrade_to_head(env["PAYDESK_DATABASE_URL"])
    quiet = paydesk("doctor", env=env)
    assert "PASS  Sandbox deliveries: none failing" in quiet.stdout
    # An endpoint nobody listens on (port 9 refuses): every delivery to it fails.
    setup = paydesk("webhooks", "setup", "http://127.0.0.1:9/api/webhooks/stripe", env=env)
    assert setup.returncode == 0, setup.stderr
    env["STRIPE_WEBHOOK_SECRET"] = re.findall(r"whsec_\w+", setup.stdout)[0]
    triggered = paydesk("trigger", "customer.created", env=env)
    assert triggered.returncode == 0, triggered.stderr
    deadline = time.monotonic() + 60
    while not sandbox.state.deliverer or not sandbox.state.deliverer.failing():
        assert time.monotonic() < deadline, "no delivery failed"
        time.sleep(0.1)
    result = paydesk("doctor", env=env)
    assert re.search(
        r"WARN  Sandbox deliveries: [1-9]\d* failing, \d+ owed; oldest: evt_", result.stdout
    )
    assert "the sandbox keeps retrying" in result.stdout
    assert env["STRIPE_SECRET_KEY"] not in result.stdout + result.stderr


def test_doctor_names_a_wrong_price(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = stack_environment(sandbox.url, f"sqlite:///{tmp_path}/p.db")
    prices = bootstrap(env)
    # Premium pointed at Enterprise's price: exists, active, monthly, wrong amount.
    env.update(prices | {"STRIPE_PRICE_PREMIUM": prices["STRIPE_PRICE_ENTERPRISE"]})
    result = paydesk("doctor", env=env)
    assert (
        "FAIL  Price STRIPE_PRICE_PREMIUM: the price is 2999 minor units, expected 999"
        in result.stdout
    )
    env["STRIPE_PRICE_PREMIUM"] = "price_doesnotexist"
    result = paydesk("doctor", env=env)
    assert "FAIL  Price STRIPE_PRICE_PREMIUM: no such price" in result.stdout


def test_serve_refuses_a_wrong_price_and_names_it(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = stack_environment(sandbox.url, f"sqlite:///{tmp_path}/s.db")
    prices = bootstrap(env)
    env.update(prices | {"STRIPE_PRICE_FREE": prices["STRIPE_PRICE_PREMIUM"]})
    result = paydesk("serve", "--port", "1", env=env)
    assert result.returncode == 2
    assert "STRIPE_PRICE_FREE: the price is 999 minor units, expected 0" in result.stderr
