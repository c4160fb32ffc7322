"""An endpoint keeps its api_version and its events carry that version; versions whose
shapes the sandbox cannot render are refused at creation, naming the one it can."""

from __future__ import annotations

import pytest
import stripe
from sandbox_testkit import WebhookReceiver

from paydesk_sandbox.config import API_VERSION


def test_pinned_endpoint_gets_events_at_its_version(
    stripe_client: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    endpoint = stripe_client.v1.webhook_endpoints.create(
        {"url": webhook_receiver.url, "enabled_events": ["*"], "api_version": API_VERSION}
    )
    webhook_receiver.secret = endpoint.secret
    assert endpoint.api_version == API_VERSION
    assert stripe_client.v1.webhook_endpoints.retrieve(endpoint.id).api_version == API_VERSION
    stripe_client.v1.customers.create({"email": "v@example.com"})
    (event,) = webhook_receiver.wait_for("customer.created")
    assert event.api_version == endpoint.api_version


def test_unrenderable_version_is_refused_naming_the_renderable_one(
    stripe_client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.webhook_endpoints.create(
            {
                "url": "http://127.0.0.1:9/hook",
                "enabled_events": ["*"],
                "api_version": "2026-08-26.dahlia",
            }
        )
    assert err.value.param == "api_version"
    assert err.value.user_message is not None
    assert "2026-08-26.dahlia" in err.value.user_message
    assert API_VERSION in err.value.user_message
    assert stripe_client.v1.webhook_endpoints.list().data == []
