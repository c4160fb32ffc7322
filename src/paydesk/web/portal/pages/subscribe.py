"""Subscribing and replacing the card: the JSON calls Stripe.js makes.

The browser sends card data to Stripe only; these calls see PaymentMethod and
SetupIntent ids and re-read every outcome from Stripe.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from paydesk.billing.mirror import apply_customer, apply_invoice
from paydesk.billing.subscriptions import (
    cancel_subscription,
    create_subscription,
    live_subscription,
    refresh_subscription,
)
from paydesk.db.models import Customer, Subscription
from paydesk.errors import Conflict, NotFound, PaymentFailed
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.web.api.deps import SessionDep
from paydesk.web.portal.common import (
    MAX_BODY,
    PortalCallDep,
    customer_of,
    gateway_of,
    promotion_of,
    settings_of,
    stripe_id,
    subscription_of,
)

router = APIRouter()


class SubscribeBody(BaseModel):
    """Subscribe to ``tier`` with the card Stripe.js just created."""

    tier: Annotated[str, Field(max_length=32)]
    payment_method: Annotated[str, Field(max_length=255)]
    promotion_code: Annotated[str | None, Field(max_length=MAX_BODY)] = None


class IntentBody(BaseModel):
    """A SetupIntent or PaymentIntent id the browser finished with."""

    intent: Annotated[str, Field(max_length=255)]


@router.post("/api/subscribe")
def subscribe(
    body: SubscribeBody, request: Request, session: SessionDep, row: PortalCallDep
) -> JSONResponse:
    """Subscribe with a card PaymentMethod; says what the browser must do next."""
    settings = settings_of(request)
    gateway = gateway_of(request)
    customer = customer_of(session, row)
    pm = stripe_id(body.payment_method, "pm_", "payment_method")
    existing = live_subscription(session, customer)
    if existing is not None and existing.status == "incomplete" and existing.tier == body.tier:
        # A first payment that failed or awaits authentication: retry it with this card.
        # Its subscription was created with the code it was given then (whose
        # redemption is already counted), so the code is not looked at again.
        outcome_row = refresh_subscription(session, gateway, settings, existing.stripe_id)
        return _next_step(session, gateway, settings, customer, outcome_row, pm)
    if existing is not None and existing.status != "incomplete":
        raise Conflict("You already have a subscription.", code="subscription_exists")
    # Checked before anything is changed: a refused code is shown next to its field.
    promotion = promotion_of(request, session, row, body.promotion_code)
    if existing is not None:
        # Another plan now: the unpaid attempt at the first one is dropped.
        cancel_subscription(session, gateway, settings, existing.stripe_id, at_period_end=False)
    # A card that is refused is refused when it is attached, before anything is created.
    outcome = create_subscription(
        session,
        gateway,
        settings,
        customer,
        tier=body.tier,
        request_key=f"{row.id}-{pm}",
        payment_method=pm,
        promotion=promotion,
    )
    return _next_step(session, gateway, settings, customer, outcome.subscription, None)


@router.post("/api/subscription/refresh")
def refresh(request: Request, session: SessionDep, row: PortalCallDep) -> JSONResponse:
    """Re-read the customer's subscription from Stripe (never the browser's word)."""
    subscription = subscription_of(session, row)
    if subscription is None:
        raise NotFound("You have no subscription.", code="subscription_not_found")
    fresh = refresh_subscription(
        session, gateway_of(request), settings_of(request), subscription.stripe_id
    )
    return JSONResponse({"status": fresh.status, "tier": fresh.tier})


@router.post("/api/setup-intent")
def setup_intent(request: Request, session: SessionDep, row: PortalCallDep) -> JSONResponse:
    """A SetupIntent for a new default card; the browser confirms it with Stripe.js."""
    customer = customer_of(session, row)
    intent = gateway_of(request).create_setup_intent(
        {
            "customer": customer.stripe_id,
            "usage": "off_session",
            "allowed_payment_method_types": ["card"],
        },
        key=operation_key("portal-setup", row.id, time.time_ns()),
    )
    return JSONResponse({"client_secret": intent["client_secret"]})


@router.post("/api/card")
def save_card(
    body: IntentBody, request: Request, session: SessionDep, row: PortalCallDep
) -> JSONResponse:
    """Make the card of a succeeded SetupIntent the default (checked with Stripe)."""
    gateway = gateway_of(request)
    intent = gateway.retrieve_setup_intent(stripe_id(body.intent, "seti_", "intent"))
    if intent.get("customer") != row.customer_id:
        raise NotFound("No such setup.", code="setup_intent_not_found")
    if intent.get("status") != "succeeded" or not intent.get("payment_method"):
        raise PaymentFailed(
            "The card was not saved: it was not authenticated.", code="setup_incomplete"
        )
    pm = str(intent["payment_method"])
    updated = gateway.set_default_payment_method(
        row.customer_id, pm, key=operation_key("default-pm", row.customer_id, pm)
    )
    apply_customer(session, updated, int(time.time()))
    subscription = subscription_of(session, row)
    if subscription is not None:
        gateway.update_subscription(
            subscription.stripe_id,
            {"default_payment_method": pm},
            key=operation_key("sub-default-pm", subscription.stripe_id, pm),
        )
        refresh_subscription(session, gateway, settings_of(request), subscription.stripe_id)
    return JSONResponse({"status": "saved"})


def _intent_id(client_secret: str | None) -> str | None:
    if not client_secret or "_secret_" not in client_secret:
        return None
    return client_secret.split("_secret_", 1)[0]


def _next_step(
    session: SessionDep,
    gateway: StripeGateway,
    settings: Settings,
    customer: Customer,
    subscription: Subscription,
    new_card: str | None,
) -> JSONResponse:
    """What the browser does after subscribing: done, authenticate, or try the card."""
    if subscription.status in ("active", "trialing"):
        return JSONResponse({"status": "active"})
    invoice_id = subscription.latest_invoice_id
    if not invoice_id:
        return JSONResponse({"status": subscription.status})
    invoice = gateway.retrieve_open_invoice(invoice_id)
    apply_invoice(session, invoice, int(time.time()))
    secret = (invoice.get("confirmation_secret") or {}).get("client_secret")
    intent_id = _intent_id(secret)
    if not secret or intent_id is None:
        return JSONResponse({"status": subscription.status})
    intent = gateway.retrieve_payment_intent(intent_id)
    if new_card is not None:
        # Retry with the new card: the browser confirms the invoice's payment with it.
        attached = gateway.attach_payment_method(
            new_card, customer.stripe_id, key=operation_key("attach", customer.stripe_id, new_card)
        )
        updated = gateway.set_default_payment_method(
            customer.stripe_id,
            attached["id"],
            key=operation_key("default-pm", customer.stripe_id, attached["id"]),
        )
        apply_customer(session, updated, int(time.time()))
        return JSONResponse(
            {"status": "confirm", "client_secret": secret, "payment_method": attached["id"]}
        )
    if intent.get("status") == "requires_action":
        return JSONResponse({"status": "requires_action", "client_secret": secret})
    error = intent.get("last_payment_error") or {}
    return JSONResponse(
        {
            "status": "declined",
            "error": {
                "code": error.get("code"),
                "decline_code": error.get("decline_code"),
                "message": error.get("message") or "Your card was declined.",
            },
        },
        status_code=402,
    )
