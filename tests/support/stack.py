"""A whole Paydesk stack for tests: a sandbox over real HTTP, settings, gateway, database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import stripe
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from paydesk.billing.tiers import bootstrap_plans
from paydesk.db.engine import create_engine, session_factory
from paydesk.settings import Settings, load_settings
from paydesk.stripe_gateway import StripeGateway, build_gateway
from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import RunningSandbox, running_sandbox

# A test-mode key of a realistic shape, assembled at run time.
TEST_SECRET_KEY = "sk_test_" + "51Paydesk" + "T3st" * 6
TEST_PUBLISHABLE_KEY = "pk_test_" + "51Paydesk" + "Pub1" * 6


@dataclass
class Stack:
    """Everything a billing test needs, wired like production but pointed at the sandbox."""

    sandbox: RunningSandbox
    settings: Settings
    gateway: StripeGateway
    engine: Engine
    sessions: sessionmaker[Session]
    sdk: stripe.StripeClient

    def complete_3ds(self, intent_id: str, *, succeed: bool = True) -> None:
        """Press the sandbox 3-D Secure page's Complete (or Fail) button."""
        action = "complete" if succeed else "fail"
        response = httpx.post(f"{self.sandbox.url}/_sandbox/3ds/{intent_id}/{action}")
        assert response.status_code < 400, response.text


def stack_environment(sandbox_url: str, database_url: str) -> dict[str, str]:
    """The environment a Paydesk process would get to run against the sandbox."""
    return {
        "PAYDESK_ENV": "development",
        "STRIPE_SECRET_KEY": TEST_SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": TEST_PUBLISHABLE_KEY,
        "PAYDESK_STRIPE_API_BASE": sandbox_url,
        "PAYDESK_DATABASE_URL": database_url,
    }


@contextmanager
def running_stack(database_url: str, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """Start a sandbox, bootstrap the tiers in it and configure Paydesk for both."""
    config = SandboxConfig(
        webhook_retry_delays=(0.05, 0.1, 0.2), webhook_timeout=2.0, async_delay=0.05
    )
    with running_sandbox(config) as sandbox:
        env = stack_environment(sandbox.url, database_url)
        prices = bootstrap_plans(build_gateway(load_settings(env)))
        for tier, price in prices.items():
            env[f"STRIPE_PRICE_{tier.upper()}"] = price["id"]
        env.update(extra_env or {})
        settings = load_settings(env)
        engine = create_engine(database_url)
        sdk = stripe.StripeClient(
            TEST_SECRET_KEY,
            base_addresses={"api": sandbox.url, "files": sandbox.url},
            max_network_retries=0,
        )
        try:
            yield Stack(
                sandbox=sandbox,
                settings=settings,
                gateway=build_gateway(settings),
                engine=engine,
                sessions=session_factory(engine),
                sdk=sdk,
            )
        finally:
            engine.dispose()
