"""Changing the plan (with a preview of the proration), cancelling and resuming."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paydesk.billing.subscriptions import cancel_subscription, change_tier, resume_subscription
from paydesk.billing.tiers import TIER_BY_KEY, TIER_RANK, configured_price_ids
from paydesk.errors import Conflict, InvalidInput
from paydesk.web.api.deps import SessionDep
from paydesk.web.portal.common import (
    PREFIX,
    FormDep,
    PortalDep,
    form_field,
    gateway_of,
    render,
    settings_of,
    subscription_of,
)

router = APIRouter()


@router.post("/tier/preview")
def preview_tier(request: Request, session: SessionDep, row: PortalDep, form: FormDep) -> Response:
    settings = settings_of(request)
    tier = form_field(form, "tier")
    subscription = subscription_of(session, row)
    if subscription is None or subscription.item_id is None:
        raise Conflict("You have no subscription to change.", code="subscription_not_found")
    price = configured_price_ids(settings).get(tier) if tier in TIER_BY_KEY else None
    if price is None:
        raise InvalidInput("Choose one of the plans.", field="tier")
    if subscription.tier == tier:
        raise Conflict(f"You are already on {TIER_BY_KEY[tier].name}.", code="same_tier")
    upgrade = TIER_RANK[tier] > TIER_RANK.get(subscription.tier or "", -1)
    preview = gateway_of(request).preview_invoice(
        {
            "customer": subscription.customer_id,
            "subscription": subscription.stripe_id,
            "subscription_details": {
                "items": [{"id": subscription.item_id, "price": price}],
                "proration_behavior": "always_invoice" if upgrade else "create_prorations",
            },
        }
    )
    lines = [
        {"description": line.get("description"), "amount": line.get("amount", 0)}
        for line in (preview.get("lines") or {}).get("data", [])
    ]
    return render(
        request,
        "confirm_tier.html",
        {
            "tier": TIER_BY_KEY[tier],
            "current": TIER_BY_KEY.get(subscription.tier or ""),
            "upgrade": upgrade,
            "lines": lines,
            "total": preview.get("total", preview.get("amount_due", 0)),
            "currency": preview.get("currency", subscription.currency),
            "subscription": subscription,
        },
    )


@router.post("/tier")
def change(request: Request, session: SessionDep, row: PortalDep, form: FormDep) -> Response:
    subscription = subscription_of(session, row)
    if subscription is None:
        raise Conflict("You have no subscription to change.", code="subscription_not_found")
    change_tier(
        session,
        gateway_of(request),
        settings_of(request),
        subscription.stripe_id,
        tier=form_field(form, "tier"),
        request_key=form_field(form, "request_key") or uuid.uuid4().hex,
    )
    return RedirectResponse(f"{PREFIX}/?done=tier", status_code=303)


@router.post("/cancel")
def cancel(request: Request, session: SessionDep, row: PortalDep, form: FormDep) -> Response:
    subscription = subscription_of(session, row)
    if subscription is None:
        raise Conflict("You have no subscription to cancel.", code="subscription_not_found")
    cancel_subscription(
        session,
        gateway_of(request),
        settings_of(request),
        subscription.stripe_id,
        at_period_end=True,
    )
    return RedirectResponse(f"{PREFIX}/?done=canceled", status_code=303)


@router.post("/resume")
def resume(request: Request, session: SessionDep, row: PortalDep, form: FormDep) -> Response:
    subscription = subscription_of(session, row)
    if subscription is None:
        raise Conflict("You have no subscription to resume.", code="subscription_not_found")
    resume_subscription(session, gateway_of(request), settings_of(request), subscription.stripe_id)
    return RedirectResponse(f"{PREFIX}/?done=resumed", status_code=303)
