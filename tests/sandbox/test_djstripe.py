"""Acceptance: a widely used third-party Stripe consumer, dj-stripe, works against the
sandbox as against Stripe.

dj-stripe 2.11 (with the Django and stripe SDK versions it needs) is installed into a
throwaway venv under ``var/`` (cached, keyed by the versions), never into Paydesk's
lock, as the localstripe bench does. ``djstripe_driver.py`` runs Django there on
SQLite. The test loads the sandbox through the official SDK with every object kind a
billing integration has, and asserts that ``djstripe_sync_models`` syncs every model
with zero errors and counts equal to the sandbox's, and that dj-stripe's webhook view
marks every delivered event valid and processed.

Skipped only when PyPI is unreachable and no cached venv exists
(``PAYDESK_REQUIRE_DJSTRIPE=1`` turns that skip into a failure, for CI).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from sandbox_testkit import make_client

from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import RunningSandbox, running_sandbox

ROOT = Path(__file__).resolve().parents[2]
DJSTRIPE, DJANGO, STRIPE = "2.11.0", "5.2.19", "15.6.2"
VENV = ROOT / "var" / f"djstripe-{DJSTRIPE}-django-{DJANGO}-stripe-{STRIPE}"
RUN_DIR = ROOT / "var" / "djstripe-run"  # the last run: database, driver.log, report
DRIVER = Path(__file__).with_name("djstripe_driver.py")
INSTALL_TIMEOUT = 900
STEP_TIMEOUT = 600


def _python() -> Path:
    return VENV / "bin" / "python"


def _ensure_venv() -> Path:
    """The cached throwaway venv's python, building it on first use."""
    marker = VENV / ".complete"
    if marker.exists():
        return _python()
    try:
        if not _python().exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
        subprocess.run(
            [
                str(_python()),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"dj-stripe=={DJSTRIPE}",
                f"django=={DJANGO}",
                f"stripe=={STRIPE}",
            ],
            check=True,
            timeout=INSTALL_TIMEOUT,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        if os.environ.get("PAYDESK_REQUIRE_DJSTRIPE") == "1":
            raise
        pytest.skip(f"could not install dj-stripe {DJSTRIPE} from PyPI: {exc}")
    marker.write_text("ok\n")
    return _python()


@pytest.fixture(scope="module")
def djstripe_python() -> Path:
    return _ensure_venv()


@pytest.fixture
def big_sandbox() -> Iterator[RunningSandbox]:
    # Generous: a busy CI machine must not turn a slow answer into a lost event.
    config = SandboxConfig(
        webhook_retry_delays=(2.0, 5.0, 10.0, 20.0, 40.0),
        webhook_timeout=float(STEP_TIMEOUT),
        async_delay=0.05,
    )
    with running_sandbox(config) as running:
        yield running


# dj-stripe model -> the sandbox's object type.
SANDBOX_KINDS = {
    "BalanceTransaction": "balance_transaction",
    "Charge": "charge",
    "Coupon": "coupon",
    "Discount": "discount",
    "Customer": "customer",
    "Dispute": "dispute",
    "Event": "event",
    "Invoice": "invoice",
    "PaymentIntent": "payment_intent",
    "PaymentMethod": "payment_method",
    "Price": "price",
    "Product": "product",
    "PromotionCode": "promotion_code",
    "Refund": "refund",
    "Subscription": "subscription",
    "WebhookEndpoint": "webhook_endpoint",
}

# Where dj-stripe itself cannot work against any Stripe API base but api.stripe.com.
DJSTRIPE_LIMITATIONS = {
    "AccountV2": (
        "dj-stripe 2.11 lists v2 accounts through a StripeClient it builds without "
        "STRIPE_API_HOST (models/account.py, _v2_accounts), so that call always goes to "
        "api.stripe.com; nothing the sandbox (or any other API base) answers can reach it"
    ),
}


class Driver:
    """The dj-stripe side, one JSON line at a time."""

    def __init__(self, python: Path, sandbox_url: str, workdir: Path) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(DRIVER), sandbox_url, str(workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(workdir / "driver.log").open("w"),
            text=True,
        )

    def ask(self, message: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if message is not None:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], STEP_TIMEOUT)
        assert ready, f"the dj-stripe driver did not answer in {STEP_TIMEOUT} s; see driver.log"
        line = self.proc.stdout.readline()
        assert line, "the dj-stripe driver died; see driver.log"
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def _load(client: stripe.StripeClient) -> None:
    """Every object kind: catalog, customers with cards, subscriptions and their
    invoices, one-off payments (a decline, a 3-D Secure one), refunds, a dispute."""
    v1 = client.v1
    percent = v1.coupons.create(
        {"percent_off": 25.5, "duration": "repeating", "duration_in_months": 3}
    )
    amount = v1.coupons.create({"amount_off": 500, "currency": "usd", "duration": "once"})
    v1.coupons.create({"id": "FOREVER10", "percent_off": 10, "duration": "forever"})
    fall = v1.promotion_codes.create(
        {"promotion": {"type": "coupon", "coupon": percent.id}, "code": "FALL25"}
    )
    v1.promotion_codes.create(
        {
            "promotion": {"type": "coupon", "coupon": amount.id},
            "code": "BIG5",
            "max_redemptions": 10,
            "restrictions": {"minimum_amount": 2000, "minimum_amount_currency": "usd"},
        }
    )
    product = v1.products.create({"name": "Pro"})
    prices = [
        v1.prices.create(
            {
                "product": product.id,
                "currency": "usd",
                "unit_amount": amount,
                "recurring": {"interval": "month"},
            }
        )
        for amount in (900, 1900, 4900)
    ]
    for i in range(10):
        customer = v1.customers.create({"email": f"c{i}@example.com", "name": f"C {i}"})
        pm = v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
        v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
        discounts: list[dict[str, str]] = []
        if i == 1:
            discounts = [{"promotion_code": fall.id}]
        elif i == 2:
            discounts = [{"coupon": "FOREVER10"}]
        v1.subscriptions.create(
            {
                "customer": customer.id,
                "items": [{"price": prices[i % 3].id}],
                "discounts": discounts,  # type: ignore[typeddict-item]
            }
        )
        intent = v1.payment_intents.create(
            {
                "amount": 2000 + i,
                "currency": "usd",
                "customer": customer.id,
                "payment_method": pm.id,
                "payment_method_types": ["card"],
                "confirm": True,
            }
        )
        if i == 0:
            v1.refunds.create({"payment_intent": intent.id, "amount": 500})
    with pytest.raises(stripe.CardError):
        v1.payment_intents.create(
            {
                "amount": 1500,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "payment_method_types": ["card"],
                "confirm": True,
            }
        )
    v1.payment_intents.create(
        {
            "amount": 1700,
            "currency": "usd",
            "payment_method": "pm_card_threeDSecure2Required",
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    v1.payment_intents.create(
        {
            "amount": 2500,
            "currency": "usd",
            "payment_method": "pm_card_createDispute",
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )


def _settle(sandbox: RunningSandbox, timeout: float = STEP_TIMEOUT) -> None:
    """Wait until every event's deliveries are done (dj-stripe handles one request at
    a time and calls the sandbox back for each event, so this takes a while)."""
    deadline = time.monotonic() + timeout
    pending: list[str] = []
    while time.monotonic() < deadline:
        events = list(sandbox.state.store("event").values())
        pending = [e["id"] for e in events if e["pending_webhooks"] > 0]
        if not pending:
            return
        time.sleep(0.5)
    raise AssertionError(f"{len(pending)} events still undelivered after {timeout} s")


@pytest.mark.timeout(INSTALL_TIMEOUT + 3 * STEP_TIMEOUT)
def test_djstripe_syncs_and_processes_everything(
    djstripe_python: Path, big_sandbox: RunningSandbox
) -> None:
    tmp_path = RUN_DIR
    shutil.rmtree(tmp_path, ignore_errors=True)
    tmp_path.mkdir(parents=True)
    client = make_client(big_sandbox.url)
    driver = Driver(djstripe_python, big_sandbox.url, tmp_path)
    try:
        hello = driver.ask()
        endpoint = client.v1.webhook_endpoints.create(
            {"url": hello["webhook_url"], "enabled_events": ["*"]}
        )
        assert driver.ask({"endpoint": endpoint.id, "secret": endpoint.secret}) == {"ok": True}
        _load(client)
        _settle(big_sandbox)
        report = driver.ask({"sync": True})
    finally:
        driver.close()
    (tmp_path / "report.json").write_text(json.dumps(report, indent=1))
    state = big_sandbox.state
    errors = {m: e for m, e in report["errors"].items() if m not in DJSTRIPE_LIMITATIONS}
    assert errors == {}
    bad = [t for t in report["triggers"] if not (t["valid"] and t["processed"])]
    assert bad == []
    delivered = {e["id"] for e in state.store("event").values()}
    assert {t["event"] for t in report["triggers"]} == delivered
    expected = _sandbox_counts(state)
    counts = report["counts"]
    for model, count in counts.items():
        if model in ("APIKey", *DJSTRIPE_LIMITATIONS):
            continue
        assert count == expected.get(model, 0), (model, count, expected.get(model, 0))
    assert all(counts[m] > 0 for m in expected), "the load covers every object kind"


def _sandbox_counts(state: Any) -> dict[str, int]:
    """What the sandbox holds, per dj-stripe model."""
    counts = {model: len(state.store(kind)) for model, kind in SANDBOX_KINDS.items()}
    counts["Account"] = 1  # the platform's own account
    counts["SubscriptionItem"] = sum(
        len(sub["items"]["data"]) for sub in state.store("subscription").values()
    )
    counts["LineItem"] = sum(len(inv["lines"]["data"]) for inv in state.store("invoice").values())
    return counts
