"""Billing API for the app's signed-in users: config, my subscription, payments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field, StrictBool

from paydesk.auth import portal_sessions
from paydesk.auth.app_users import AppTokenVerifier, AppUser
from paydesk.billing import promotions
from paydesk.billing.customers import customer_for_user, ensure_customer
from paydesk.billing.payments import PaymentRequest, create_payment
from paydesk.billing.subscriptions import (
    cancel_subscription,
    change_tier,
    create_subscription,
    live_subscription,
    resume_subscription,
)
from paydesk.db.models import Subscription
from paydesk.errors import AuthenticationRequired, NotFound
from paydesk.web.api.admin_customers import list_tiers
from paydesk.web.api.admin_payments import payment_result
from paydesk.web.api.admin_subscriptions import result as subscription_result
from paydesk.web.api.deps import GatewayDep, IdempotencyKeyDep, SessionDep, SettingsDep
from paydesk.web.api.schemas import (
    Currency,
    MinorUnits,
    PaymentMethodId,
    PaymentResult,
    Strict,
    SubscriptionOut,
    SubscriptionResult,
    TierKey,
    TierOut,
    error_responses,
)

router = APIRouter(prefix="/api/billing", tags=["billing (app users)"])
_ERRORS = error_responses(401, 402, 404, 409, 422, 503)


def current_user(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <app JWT>")] = None,
) -> AppUser:
    """The signed-in app user, from ``Authorization: Bearer <JWT>``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired(
            "Send the app's sign-in token as 'Authorization: Bearer <token>'.",
            code="missing_token",
        )
    verifier: AppTokenVerifier = request.app.state.app_tokens
    return verifier.verify(token.strip())


UserDep = Annotated[AppUser, Depends(current_user)]


class BillingConfig(BaseModel):
    """What the front end needs before checkout."""

    publishable_key: str | None
    tiers: list[TierOut]


class MySubscription(BaseModel):
    """The signed-in user's current subscription (null when none)."""

    subscription: SubscriptionOut | None


class Subscribe(Strict):
    """Subscribe to a tier; without a card a paid tier returns a ``client_secret``."""

    tier: TierKey
    payment_method: PaymentMethodId | None = None


class SubscribeCreate(Subscribe):
    """Subscribe to a tier, optionally with a customer-facing promotion code."""

    promotion_code: Annotated[
        str | None,
        Field(
            max_length=promotions.MAX_LENGTH,
            description="A promotion code the customer typed (e.g. SPRING25); an unknown, "
            "inactive, expired, used-up or restricted one is refused with "
            "422 promotion_code_invalid.",
        ),
    ] = None


class SelfCancel(Strict):
    """Cancel at period end (default) or now."""

    at_period_end: StrictBool = True


class PaymentIntentCreate(Strict):
    """A one-off payment to confirm in the browser with Stripe Elements."""

    amount: MinorUnits
    currency: Currency
    description: Annotated[str | None, Field(max_length=1000)] = None


class PortalSessionCreate(Strict):
    """Open the customer portal; ``return_url`` must be on PAYDESK_PORTAL_RETURN_URLS."""

    return_url: Annotated[str | None, Field(max_length=portal_sessions.MAX_RETURN_URL)] = None


class PortalSessionOut(BaseModel):
    """A single-use portal link: open ``url`` before ``expires_at``."""

    url: str
    expires_at: datetime
    return_url: str | None


def public_base(request: Request, settings: SettingsDep) -> str:
    """Where customers reach Paydesk: PAYDESK_PUBLIC_URL, else this request's origin."""
    return settings.public_url or str(request.base_url).rstrip("/")


@router.post(
    "/portal-sessions", summary="Open the customer portal", responses=_ERRORS, status_code=201
)
def create_portal_session(
    body: PortalSessionCreate,
    request: Request,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    user: UserDep,
) -> PortalSessionOut:
    """A single-use URL (valid PAYDESK_PORTAL_LINK_MINUTES) opening the user's portal."""
    return_url = portal_sessions.check_return_url(settings, body.return_url)
    customer = ensure_customer(session, gateway, user_id=user.user_id, email=user.email)
    link = portal_sessions.create_link(
        session,
        settings,
        customer_id=customer.stripe_id,
        return_url=return_url,
        created_by=f"app:{user.user_id}"[:255],
    )
    return PortalSessionOut(
        url=f"{public_base(request, settings)}/portal/session/{link.token}",
        expires_at=link.expires_at,
        return_url=return_url,
    )


@router.get("/config", summary="Publishable key and tiers")
def config(settings: SettingsDep) -> BillingConfig:
    """Public: the publishable key and the tiers with their prices."""
    return BillingConfig(
        publishable_key=settings.stripe_publishable_key, tiers=list_tiers(settings)
    )


def _mine(session: SessionDep, user: AppUser) -> Subscription:
    customer = customer_for_user(session, user.user_id)
    row = live_subscription(session, customer) if customer else None
    if row is None:
        raise NotFound("You have no subscription.", code="subscription_not_found")
    return row


@router.get("/subscription", summary="My subscription", responses=_ERRORS)
def my_subscription(session: SessionDep, user: UserDep) -> MySubscription:
    """The signed-in user's live subscription, or null."""
    customer = customer_for_user(session, user.user_id)
    row = live_subscription(session, customer) if customer else None
    return MySubscription(subscription=SubscriptionOut.model_validate(row) if row else None)


@router.post("/subscription", summary="Subscribe", responses=_ERRORS, status_code=201)
def subscribe(
    body: SubscribeCreate,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    user: UserDep,
    key: IdempotencyKeyDep,
) -> SubscriptionResult:
    """Subscribe the signed-in user (their Stripe customer is created on first need).

    A ``promotion_code`` is checked before anything is created and discounts the
    subscription's invoices (the first invoice's ``amount_due`` is the discounted one).
    """
    promotion = None
    if body.promotion_code is not None:
        known = customer_for_user(session, user.user_id)
        promotion = promotions.find_promotion(
            gateway, body.promotion_code, customer_id=known.stripe_id if known else None
        )
    customer = ensure_customer(session, gateway, user_id=user.user_id, email=user.email)
    outcome = create_subscription(
        session,
        gateway,
        settings,
        customer,
        tier=body.tier,
        request_key=key or uuid.uuid4().hex,
        payment_method=body.payment_method,
        promotion=promotion,
    )
    return subscription_result(outcome)


@router.post("/subscription/tier", summary="Change my tier", responses=_ERRORS)
def change_my_tier(
    body: Subscribe,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    user: UserDep,
    key: IdempotencyKeyDep,
) -> SubscriptionResult:
    """Upgrade (invoiced now, prorated) or downgrade (credited) the user's subscription."""
    row = _mine(session, user)
    outcome = change_tier(
        session,
        gateway,
        settings,
        row.stripe_id,
        tier=body.tier,
        request_key=key or uuid.uuid4().hex,
        payment_method=body.payment_method,
    )
    return subscription_result(outcome)


@router.post("/subscription/cancel", summary="Cancel my subscription", responses=_ERRORS)
def cancel_mine(
    body: SelfCancel,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    user: UserDep,
) -> SubscriptionResult:
    """Cancel at period end (default) or now."""
    row = _mine(session, user)
    return subscription_result(
        cancel_subscription(
            session, gateway, settings, row.stripe_id, at_period_end=body.at_period_end
        )
    )


@router.post("/subscription/resume", summary="Resume my subscription", responses=_ERRORS)
def resume_mine(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep, user: UserDep
) -> SubscriptionResult:
    """Undo a cancellation at period end."""
    row = _mine(session, user)
    return subscription_result(resume_subscription(session, gateway, settings, row.stripe_id))


@router.post(
    "/payment-intents", summary="Start a one-off payment", responses=_ERRORS, status_code=201
)
def start_payment(
    body: PaymentIntentCreate,
    session: SessionDep,
    gateway: GatewayDep,
    user: UserDep,
    key: IdempotencyKeyDep,
) -> PaymentResult:
    """Create an unconfirmed payment; confirm it in the browser with ``client_secret``."""
    customer = ensure_customer(session, gateway, user_id=user.user_id, email=user.email)
    request = PaymentRequest(
        amount=body.amount,
        currency=body.currency,
        request_key=key or uuid.uuid4().hex,
        confirm=False,
        description=body.description,
    )
    return payment_result(create_payment(session, gateway, customer, request))
