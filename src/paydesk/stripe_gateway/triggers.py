"""``paydesk trigger``: the API calls that make Stripe (or the sandbox) emit an event.

Like ``stripe trigger``: each event type has a short sequence of ordinary API
requests (create a PaymentIntent with a test card, refund it, …) whose side
effect is the event. Steps may refer to an earlier step's response with
``${step:path}`` (``${payment_intent:id}``, ``${disputes:data.0.id}``); a step
with ``expected_error`` may fail with that Stripe error type (a decline) without
stopping the run. Requests carry idempotency keys unique to the run.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from paydesk.errors import InvalidInput
from paydesk.stripe_gateway.gateway import StripeGateway

Json = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One API request of a trigger."""

    name: str
    method: str
    path: str
    params: Json = field(default_factory=dict)
    expected_error: str | None = None


_DESC = "(created by paydesk trigger)"


def _intent(card: str, amount: int = 2000, *, expected: str | None = None, **extra: Any) -> Step:
    params: Json = {
        "amount": amount,
        "currency": "usd",
        "confirm": "true",
        "payment_method": card,
        "payment_method_types": ["card"],
        "description": _DESC,
        **extra,
    }
    return Step("payment_intent", "post", "/v1/payment_intents", params, expected)


_SUBSCRIPTION = (
    Step(
        "customer",
        "post",
        "/v1/customers",
        {
            "description": _DESC,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
    ),
    Step("product", "post", "/v1/products", {"name": "myproduct", "description": _DESC}),
    Step(
        "price",
        "post",
        "/v1/prices",
        {
            "product": "${product:id}",
            "unit_amount": "1500",
            "currency": "usd",
            "recurring": {"interval": "month"},
        },
    ),
    Step(
        "subscription",
        "post",
        "/v1/subscriptions",
        {"customer": "${customer:id}", "items": [{"price": "${price:id}"}]},
    ),
)


def _invoice(card: str, *, expected: str | None = None) -> tuple[Step, ...]:
    return (
        Step("customer", "post", "/v1/customers", {"description": _DESC}),
        Step(
            "payment_method",
            "post",
            f"/v1/payment_methods/{card}/attach",
            {"customer": "${customer:id}"},
        ),
        Step(
            "invoiceitem",
            "post",
            "/v1/invoiceitems",
            {"amount": 2000, "currency": "usd", "customer": "${customer:id}", "description": _DESC},
        ),
        Step(
            "invoice",
            "post",
            "/v1/invoices",
            {
                "customer": "${customer:id}",
                "description": _DESC,
                "pending_invoice_items_behavior": "include",
            },
        ),
        Step(
            "invoice_pay",
            "post",
            "/v1/invoices/${invoice:id}/pay",
            {"payment_method": "${payment_method:id}"},
            expected,
        ),
    )


_DISPUTE = _intent("pm_card_createDisputeInquiry", 100)
_DISPUTES_LIST = Step("disputes", "get", "/v1/disputes", {"payment_intent": "${payment_intent:id}"})

TRIGGERS: dict[str, tuple[Step, ...]] = {
    "payment_intent.created": (
        Step(
            "payment_intent",
            "post",
            "/v1/payment_intents",
            {
                "amount": 2000,
                "currency": "usd",
                "description": _DESC,
                "payment_method_types": ["card"],
            },
        ),
    ),
    "payment_intent.succeeded": (
        _intent(
            "pm_card_visa",
            shipping={
                "name": "Jenny Rosen",
                "address": {
                    "line1": "510 Townsend St",
                    "postal_code": "94103",
                    "city": "San Francisco",
                    "state": "CA",
                    "country": "US",
                },
            },
        ),
    ),
    "payment_intent.payment_failed": (_intent("pm_card_chargeDeclined", expected="card_error"),),
    "payment_intent.requires_action": (_intent("pm_card_authenticationRequired"),),
    "payment_intent.canceled": (
        Step(
            "payment_intent",
            "post",
            "/v1/payment_intents",
            {"amount": 2000, "currency": "usd", "description": _DESC},
        ),
        Step(
            "cancel",
            "post",
            "/v1/payment_intents/${payment_intent:id}/cancel",
            {"cancellation_reason": "requested_by_customer"},
        ),
    ),
    "charge.succeeded": (_intent("pm_card_visa", 100),),
    "charge.failed": (_intent("pm_card_visa_chargeDeclined", 100, expected="card_error"),),
    "charge.refunded": (
        _intent("pm_card_visa", 100),
        Step("refund", "post", "/v1/refunds", {"payment_intent": "${payment_intent:id}"}),
    ),
    "refund.created": (
        _intent("pm_card_visa", 100),
        Step("refund", "post", "/v1/refunds", {"payment_intent": "${payment_intent:id}"}),
    ),
    "charge.refund.updated": (
        _intent("pm_card_visa", 100),
        Step("refund", "post", "/v1/refunds", {"payment_intent": "${payment_intent:id}"}),
        Step(
            "refund_update", "post", "/v1/refunds/${refund:id}", {"metadata": {"order_id": "6735"}}
        ),
    ),
    "charge.dispute.created": (_DISPUTE,),
    "charge.dispute.updated": (
        _DISPUTE,
        _DISPUTES_LIST,
        Step(
            "dispute_update",
            "post",
            "/v1/disputes/${disputes:data.0.id}",
            {"metadata": {"foo": "bar"}},
        ),
    ),
    "charge.dispute.closed": (
        _DISPUTE,
        _DISPUTES_LIST,
        Step("dispute_close", "post", "/v1/disputes/${disputes:data.0.id}/close"),
    ),
    "customer.created": (Step("customer", "post", "/v1/customers", {"description": _DESC}),),
    "customer.updated": (
        Step("customer", "post", "/v1/customers", {"description": _DESC}),
        Step(
            "customer_update", "post", "/v1/customers/${customer:id}", {"metadata": {"foo": "bar"}}
        ),
    ),
    "customer.deleted": (
        Step("customer", "post", "/v1/customers", {"description": _DESC}),
        Step("customer_delete", "delete", "/v1/customers/${customer:id}"),
    ),
    "product.created": (_SUBSCRIPTION[1],),
    "price.created": (_SUBSCRIPTION[1], _SUBSCRIPTION[2]),
    "customer.subscription.created": _SUBSCRIPTION,
    "customer.subscription.updated": (
        *_SUBSCRIPTION,
        Step(
            "subscription_update",
            "post",
            "/v1/subscriptions/${subscription:id}",
            {"metadata": {"foo": "bar"}},
        ),
    ),
    "customer.subscription.deleted": (
        *_SUBSCRIPTION,
        Step("subscription_delete", "delete", "/v1/subscriptions/${subscription:id}"),
    ),
    "invoice.paid": _invoice("pm_card_visa"),
    "invoice.payment_failed": _invoice("pm_card_chargeCustomerFail", expected="card_error"),
}

_REFERENCE = re.compile(r"\$\{([a-z_]+):([A-Za-z0-9_.]+)\}")


def _lookup(results: dict[str, Json], name: str, path: str) -> str:
    value: Any = results[name]
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return str(value)


def _resolve(value: Any, results: dict[str, Json]) -> Any:
    if isinstance(value, str):
        return _REFERENCE.sub(lambda match: _lookup(results, match[1], match[2]), value)
    if isinstance(value, list):
        return [_resolve(item, results) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(item, results) for key, item in value.items()}
    return value


@dataclass
class StepResult:
    """What one step did: its request line and the object id or the expected error."""

    name: str
    request: str
    object_id: str | None
    error: str | None = None


def run_trigger(gateway: StripeGateway, event_type: str) -> list[StepResult]:
    """Perform ``event_type``'s requests in order; ``InvalidInput`` for an unknown type."""
    steps = TRIGGERS.get(event_type)
    if steps is None:
        raise InvalidInput(f"No trigger for {event_type}.", field="event_type")
    run = uuid.uuid4().hex
    results: dict[str, Json] = {}
    done: list[StepResult] = []
    for index, step in enumerate(steps):
        path = _resolve(step.path, results)
        params = _resolve(step.params, results)
        key = f"paydesk-trigger-{run}-{index}" if step.method == "post" else None
        line = f"{step.method.upper()} {path}"
        data = gateway.raw_request(
            step.method, path, params, key=key, tolerated_error=step.expected_error
        )
        if data is None:
            done.append(StepResult(step.name, line, None, f"{step.expected_error} (expected)"))
            results[step.name] = {}
            continue
        results[step.name] = data
        done.append(StepResult(step.name, line, data.get("id")))
    return done
