"""Fixtures for the billing tests: a fresh in-process sandbox and an SDK client on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe

from paydesk.sandbox.config import SandboxConfig
from paydesk.sandbox.server import RunningSandbox, running_sandbox


def fake_key() -> str:
    return "sk_test_" + "x" * 24


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Override in a test module to start the sandbox with other settings."""
    return SandboxConfig(webhook_retry_delays=(0.05, 0.1), async_delay=0.05)


@pytest.fixture
def billing_sandbox(sandbox_config: SandboxConfig) -> Iterator[RunningSandbox]:
    with running_sandbox(sandbox_config) as running:
        yield running


@pytest.fixture
def client(billing_sandbox: RunningSandbox) -> stripe.StripeClient:
    return stripe.StripeClient(
        fake_key(), base_addresses={"api": billing_sandbox.url}, max_network_retries=0
    )


@pytest.fixture
def event_types(billing_sandbox: RunningSandbox) -> Callable[[], list[str]]:
    """Types of every event emitted so far (oldest first), read from the sandbox state."""

    def types() -> list[str]:
        events: list[dict[str, Any]] = list(billing_sandbox.state.store("event").values())
        return [e["type"] for e in events]

    return types
