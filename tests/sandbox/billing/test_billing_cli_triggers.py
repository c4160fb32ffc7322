"""The Stripe CLI's ``stripe trigger`` call sequences for billing events run unchanged.

Each fixture in the shared reference (stripe/stripe-cli ``pkg/fixtures/triggers``) is
replayed through the SDK's ``raw_request``; ``${step:path}`` refers to an earlier
response, and steps marked ``expected_error_type`` must fail with that error type.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import stripe

from paydesk_sandbox.server import RunningSandbox

TRIGGERS = Path(__file__).resolve().parents[2] / "reference" / "stripe-cli-triggers"
BILLING_TRIGGERS = {
    "customer.subscription.created": "customer.subscription.created",
    "customer.subscription.deleted": "customer.subscription.deleted",
    "customer.subscription.paused": "customer.subscription.paused",
    "customer.subscription.trial_will_end": "customer.subscription.trial_will_end",
    "customer.subscription.updated": "customer.subscription.updated",
    "invoice.created": "invoice.created",
    "invoice.finalized": "invoice.finalized",
    "invoice.paid": "invoice.paid",
    "invoice.payment_action_required": "invoice.payment_action_required",
    "invoice.payment_failed": "invoice.payment_failed",
    # The CLI documents these two as emitting the invoice events.
    "subscription.payment_failed": "invoice.payment_failed",
    "subscription.payment_succeeded": "invoice.payment_succeeded",
    "price.created": "price.created",
    "product.created": "product.created",
}
_REFERENCE = re.compile(r"\$\{([a-z_]+):([a-z_.]+)\}")


def _resolve(value: Any, responses: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, responses) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, responses) for v in value]
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        node = responses[match.group(1)]
        for part in match.group(2).split("."):
            node = node[part]
        return str(node)

    return _REFERENCE.sub(lookup, value)


def run_trigger(client: stripe.StripeClient, name: str) -> None:
    """Replay one trigger fixture; fails if a step errs unexpectedly."""
    fixture = json.loads((TRIGGERS / f"{name}.json").read_text())
    responses: dict[str, Any] = {}
    for step in fixture["fixtures"]:
        path = _resolve(step["path"], responses)
        params = _resolve(step.get("params") or {}, responses)
        expected_error = step.get("expected_error_type")
        try:
            response = client.raw_request(step["method"], path, **params)
        except stripe.StripeError as exc:
            if expected_error is None or exc.error is None or exc.error.type != expected_error:
                raise
            continue
        assert expected_error is None, f"{step['name']} should have failed with {expected_error}"
        responses[step["name"]] = json.loads(response.body)


@pytest.mark.parametrize(("trigger", "event"), sorted(BILLING_TRIGGERS.items()))
def test_trigger_runs_and_emits_its_event(
    trigger: str, event: str, client: stripe.StripeClient, sandbox: RunningSandbox
) -> None:
    run_trigger(client, trigger)
    emitted = [e["type"] for e in sandbox.state.store("event").values()]
    assert event in emitted, emitted
