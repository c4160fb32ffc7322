"""A real Paydesk (uvicorn on loopback) receiving signed deliveries from a real sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from paydesk.db.models import StripeEvent
from paydesk.settings import Settings, load_settings
from paydesk.stripe_gateway import StripeGateway, build_gateway, pinned_api_version
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.web import create_app
from paydesk.webhooks.events import GUIDE_EVENTS
from paydesk.webhooks.process import Worker, build_worker
from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import RunningSandbox, running_sandbox
from tests.support import waiting
from tests.support.servers import free_port, serve_in_thread
from tests.webhooks.support import TEST_KEY


def poll(condition: Callable[[], Any], *, timeout: float = 15.0, every: float = 0.05) -> Any:
    """``tests.support.waiting.poll`` with these in-process tests' defaults (15 s, 50 ms)."""
    return waiting.poll(condition, timeout=timeout, every=every)


@dataclass
class Live:
    """Sandbox + served Paydesk + a worker on one database."""

    sandbox: RunningSandbox
    settings: Settings
    gateway: StripeGateway
    engine: Engine
    base_url: str
    endpoint_id: str
    worker: Worker

    def stored(self, event_type: str | None = None) -> list[StripeEvent]:
        with Session(self.engine) as session:
            query = select(StripeEvent).order_by(StripeEvent.id)
            if event_type:
                query = query.where(StripeEvent.type == event_type)
            return list(session.scalars(query))

    def wait_for(self, event_type: str, count: int = 1) -> list[StripeEvent]:
        """Wait until ``count`` events of ``event_type`` are stored (delivered + committed)."""
        return poll(lambda: (rows := self.stored(event_type)) and len(rows) >= count and rows)

    def deliveries(self) -> list[dict[str, Any]]:
        """The sandbox's delivery log for this endpoint."""
        response = httpx.get(
            f"{self.sandbox.url}/_sandbox/deliveries", params={"endpoint": self.endpoint_id}
        )
        return list(response.json()["data"])

    def apply(self) -> int:
        """Let the worker apply everything due (bounded)."""
        return self.worker.drain(timeout=30)


def live_paydesk(
    database_url: str, engine: Engine, events: tuple[str, ...] = GUIDE_EVENTS
) -> Iterator[Live]:
    config = SandboxConfig(
        webhook_retry_delays=(0.05, 0.1, 0.2), webhook_timeout=2.0, async_delay=0.05
    )
    with running_sandbox(config) as sandbox:
        base_settings = load_settings(
            {
                "PAYDESK_DATABASE_URL": database_url,
                "STRIPE_SECRET_KEY": TEST_KEY,
                "PAYDESK_STRIPE_API_BASE": sandbox.url,
            }
        )
        gateway = build_gateway(base_settings)
        port = free_port()
        url = f"http://127.0.0.1:{port}/api/webhooks/stripe"
        # What `paydesk webhooks setup URL` does, with the events this test needs.
        endpoint = gateway.create_webhook_endpoint(
            {"url": url, "enabled_events": list(events), "api_version": pinned_api_version()},  # type: ignore[typeddict-item]
            key=operation_key("webhook_endpoint", url),
        )
        settings = load_settings(
            {
                "PAYDESK_DATABASE_URL": database_url,
                "STRIPE_SECRET_KEY": TEST_KEY,
                "PAYDESK_STRIPE_API_BASE": sandbox.url,
                "STRIPE_WEBHOOK_SECRET": endpoint["secret"],
            }
        )
        with serve_in_thread(create_app(settings, engine=engine), port=port) as base:
            yield Live(
                sandbox=sandbox,
                settings=settings,
                gateway=gateway,
                engine=engine,
                base_url=base,
                endpoint_id=endpoint["id"],
                worker=build_worker(settings, engine, backoff=lambda _attempts: 0.2),
            )


@pytest.fixture
def live(migrated_url: str, engine: Engine) -> Iterator[Live]:
    """The guide's seven events delivered from the sandbox to a served Paydesk."""
    yield from live_paydesk(migrated_url, engine)


@pytest.fixture
def live_all(migrated_url: str, engine: Engine) -> Iterator[Live]:
    """Like ``live``, with every event type delivered."""
    yield from live_paydesk(migrated_url, engine, ("*",))
