"""A served Paydesk with the portal, the app's JWT, a registered webhook endpoint and a worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from paydesk.mail.outbox import OutboxSender, enabled
from paydesk.settings import Settings, load_settings
from paydesk.stripe_gateway import pinned_api_version
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.web import create_app
from paydesk.webhooks.process import build_worker
from tests.support.servers import free_port, serve_in_thread
from tests.support.stack import Stack, stack_environment

JWT_SECRET = "portal-app-signing-secret-" + "y" * 24
RETURN_ORIGIN = "https://app.example"
EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.finalized",
)


def app_token(user: str, *, expires_in: int = 300) -> str:
    """The app's sign-in token for ``user`` (HS256, like the billing API tests)."""
    payload = {"sub": user, "email": f"{user}@example.com", "exp": int(time.time()) + expires_in}
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


@dataclass
class Portal:
    """Sandbox + Paydesk (API, portal, webhooks) + a running worker on one database."""

    stack: Stack
    settings: Settings
    base: str
    clients: list[httpx.Client] = field(default_factory=list)

    def link(self, user: str, **body: Any) -> str:
        """A fresh portal link for ``user``, as the app gets it."""
        response = httpx.post(
            f"{self.base}/api/billing/portal-sessions",
            json=body,
            headers={"Authorization": f"Bearer {app_token(user)}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["url"])

    def open(self, user: str) -> httpx.Client:
        """An HTTP client holding ``user``'s portal session."""
        client = httpx.Client(base_url=self.base, timeout=30)
        self.clients.append(client)
        response = client.get(self.link(user))
        assert response.status_code == 303, response.text
        return client


def portal_environment(stack: Stack, port: int, webhook_secret: str) -> dict[str, str]:
    env = stack_environment(stack.sandbox.url, stack.settings.database_url.get_secret_value())
    for tier in ("FREE", "PREMIUM", "ENTERPRISE"):
        env[f"STRIPE_PRICE_{tier}"] = str(getattr(stack.settings, f"stripe_price_{tier.lower()}"))
    env.update(
        {
            "PAYDESK_JWT_SECRET": JWT_SECRET,
            "PAYDESK_PORTAL_RETURN_URLS": RETURN_ORIGIN,
            "STRIPE_WEBHOOK_SECRET": webhook_secret,
            "PAYDESK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
    )
    return env


@pytest.fixture
def portal(stack: Stack) -> Iterator[Portal]:
    with running_portal(stack) as running:
        yield running


@contextmanager
def running_portal(stack: Stack, extra_env: dict[str, str] | None = None) -> Iterator[Portal]:
    """Serve Paydesk for ``stack`` with a webhook endpoint, a worker and (if set up) mail."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/webhooks/stripe"
    endpoint = stack.gateway.create_webhook_endpoint(
        {"url": url, "enabled_events": list(EVENTS), "api_version": pinned_api_version()},  # type: ignore[typeddict-item]
        key=operation_key("webhook_endpoint", url),
    )
    settings = load_settings(
        {**portal_environment(stack, port, endpoint["secret"]), **(extra_env or {})}
    )
    worker = build_worker(settings, stack.engine, backoff=lambda _attempts: 0.2)
    sender = OutboxSender(settings, stack.engine, every=0.2) if enabled(settings) else None
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), kwargs={"idle_seconds": 0.1})
    with serve_in_thread(create_app(settings, engine=stack.engine), port=port) as base:
        thread.start()
        if sender is not None:
            sender.start()
        running = Portal(stack=stack, settings=settings, base=base)
        try:
            yield running
        finally:
            if sender is not None:
                sender.stop()
            stop.set()
            thread.join(timeout=30)
            for client in running.clients:
                client.close()


def admin_api(portal: Portal, role: str = "support") -> httpx.Client:
    """An Admin API client with a fresh ``role`` token."""
    from tests.support.admins import admin_token

    token = admin_token(portal.stack.sessions, portal.settings, role)
    client = httpx.Client(
        base_url=portal.base, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
    portal.clients.append(client)
    return client


def payment_needing_action(portal: Portal, user: str) -> str:
    """A payment of ``user``'s customer that awaits 3-D Secure (``requires_action``)."""
    finance = admin_api(portal, "finance")
    customer = finance.post(
        "/api/admin/customers", json={"user_id": user, "email": f"{user}@example.com"}
    )
    assert customer.status_code in (200, 201), customer.text
    created = finance.post(
        "/api/admin/payments",
        json={
            "customer": customer.json()["id"],
            "amount": 4200,
            "currency": "usd",
            "payment_method": "pm_card_authenticationRequired",
        },
    )
    assert created.status_code in (200, 201, 202), created.text
    payment = created.json()["payment"]
    assert payment["status"] == "requires_action"
    return str(payment["id"])
