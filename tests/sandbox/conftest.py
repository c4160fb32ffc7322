"""Shared fixtures for sandbox tests (also used by tests/sandbox/billing/).

- ``sandbox``: an independent in-process sandbox (``.url``, ``.state``) per test.
- ``sandbox_url``: its base URL.
- ``stripe_client``: the official SDK's ``StripeClient`` pointed at it, no retries.
- ``webhook_receiver``: a real HTTP server that verifies every delivery with
  ``stripe.Webhook.construct_event``; ``webhook_receiver.register(stripe_client)``
  creates a webhook endpoint for it and ``wait_for(type)`` returns received events.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe
from sandbox_testkit import WebhookReceiver, make_client

from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import RunningSandbox, running_sandbox


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A fresh sandbox with short webhook retry delays."""
    config = SandboxConfig(
        webhook_retry_delays=(0.05, 0.1, 0.2), webhook_timeout=2.0, async_delay=0.05
    )
    with running_sandbox(config) as running:
        yield running


@pytest.fixture
def sandbox_url(sandbox: RunningSandbox) -> str:
    """Base URL of the test's sandbox, e.g. ``http://127.0.0.1:40123``."""
    return sandbox.url


@pytest.fixture
def stripe_client(sandbox_url: str) -> stripe.StripeClient:
    """The official SDK pointed at the test's sandbox."""
    return make_client(sandbox_url)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A verifying webhook receiver on a free local port."""
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
