"""A refund made in Stripe's Dashboard, not through Paydesk, reaches the refund metrics
within seconds through the webhook (issue 14), not at the next hourly backfill.

Everything runs as deployed: the sandbox as its own process delivering signed events to
``paydesk serve``, whose ``paydesk worker`` applies them. The endpoint is registered
with exactly the events ``paydesk webhooks setup`` subscribes to, so a refund event
missing from that list fails here.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import stripe

from paydesk.analytics import business
from paydesk.webhooks.events import subscribed_events
from tests.reliability.support_load import process_stack
from tests.support.waiting import poll

DAY = 86_400


def test_a_refund_made_in_the_dashboard_reaches_the_metrics(
    database_url: str, tmp_path: Path
) -> None:
    secret_key = "sk_test_51Dash" + secrets.token_hex(16)
    with process_stack(
        tmp_path / "logs",
        database_url,
        secret_key=secret_key,
        publishable_key="pk_test_51Dash" + secrets.token_hex(16),
        webhook_secret="whsec_" + secrets.token_hex(16),
        paydesk_secret=secrets.token_urlsafe(36),
        enabled_events=subscribed_events(),
    ) as stack:
        # The Dashboard is Stripe's own client: the official SDK straight at the sandbox.
        dashboard = stripe.StripeClient(
            secret_key, base_addresses={"api": stack.sandbox_url}, max_network_retries=0
        )
        intent = dashboard.v1.payment_intents.create(
            {
                "amount": 4200,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
                "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            }
        )
        assert intent.status == "succeeded"
        refund = dashboard.v1.refunds.create({"payment_intent": intent.id, "amount": 1500})
        assert refund.status == "succeeded"
        today = int(time.time()) // DAY * DAY

        def refunds() -> business.RefundMetrics:
            with stack.sessions() as session:
                return business.overview(session, today, today + DAY, "usd").refunds

        poll(
            lambda: refunds().amount == 1500,
            timeout=60,
            what="the Dashboard's refund in the metrics",
            every=0.5,
        )
        got = refunds()
        assert (got.count, got.amount) == (1, 1500)
        stack.check_alive()
