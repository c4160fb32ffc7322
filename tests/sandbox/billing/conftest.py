"""Billing-test fixtures on top of tests/sandbox/conftest.py (``sandbox``, ``stripe_client``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from paydesk_sandbox.server import RunningSandbox


@pytest.fixture
def client(stripe_client: stripe.StripeClient) -> stripe.StripeClient:
    """The official SDK on a fresh sandbox (short name for the many calls below)."""
    return stripe_client


@pytest.fixture
def event_types(sandbox: RunningSandbox) -> Callable[[], list[str]]:
    """Types of every event emitted so far (oldest first), read from the sandbox state."""

    def types() -> list[str]:
        events: list[dict[str, Any]] = list(sandbox.state.store("event").values())
        return [e["type"] for e in events]

    return types
