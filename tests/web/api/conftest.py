"""A running Paydesk (uvicorn on loopback) in front of the test stack."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from paydesk.web import create_app
from tests.support.admins import admin_token
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client for a real Paydesk server wired to the stack, as an ``admin`` token."""
    token = admin_token(stack.sessions, stack.settings)
    with (
        serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base,
        httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        yield client
