"""Admin actions on subscriptions: subscribe, change tier, cancel, resume."""

from __future__ import annotations

from typing import Any

from paydesk.admin_actions.core import Action, Context, Done, perform
from paydesk.auth.roles import Permission
from paydesk.billing.customers import get_customer
from paydesk.billing.subscriptions import (
    SubscriptionOutcome,
    cancel_subscription,
    change_tier,
    create_subscription,
    get_subscription,
    resume_subscription,
)
from paydesk.db.models import Subscription
from paydesk.stripe_gateway import StripeGateway

CREATE = Action("subscription.create", Permission.SUBSCRIPTIONS_CREATE)
CHANGE_TIER = Action("subscription.change_tier", Permission.SUBSCRIPTIONS_CHANGE_TIER)
CANCEL = Action("subscription.cancel", Permission.SUBSCRIPTIONS_CANCEL)
RESUME = Action("subscription.resume", Permission.SUBSCRIPTIONS_RESUME)


def _state(row: Subscription) -> dict[str, Any]:
    return {
        "status": row.status,
        "tier": row.tier,
        "cancel_at_period_end": row.cancel_at_period_end,
    }


def create(
    ctx: Context,
    gateway: StripeGateway,
    customer_id: str,
    *,
    tier: str,
    request_key: str,
    payment_method: str | None = None,
) -> SubscriptionOutcome:
    """Subscribe a customer to a tier (Free needs no card)."""

    def work() -> Done[SubscriptionOutcome]:
        customer = get_customer(ctx.session, customer_id)
        outcome = create_subscription(
            ctx.session,
            gateway,
            ctx.settings,
            customer,
            tier=tier,
            request_key=request_key,
            payment_method=payment_method,
        )
        row = outcome.subscription
        return Done(outcome, after={"tier": tier, "status": row.status}, target=row.stripe_id)

    return perform(ctx, CREATE, customer_id, work)


def set_tier(
    ctx: Context,
    gateway: StripeGateway,
    subscription_id: str,
    *,
    tier: str,
    request_key: str,
    payment_method: str | None = None,
) -> SubscriptionOutcome:
    """Change a subscription's tier (prorated)."""

    def work() -> Done[SubscriptionOutcome]:
        before = _state(get_subscription(ctx.session, subscription_id))
        outcome = change_tier(
            ctx.session,
            gateway,
            ctx.settings,
            subscription_id,
            tier=tier,
            request_key=request_key,
            payment_method=payment_method,
        )
        return Done(outcome, before=before, after=_state(outcome.subscription))

    return perform(ctx, CHANGE_TIER, subscription_id, work)


def cancel(
    ctx: Context, gateway: StripeGateway, subscription_id: str, *, at_period_end: bool
) -> SubscriptionOutcome:
    """Cancel a subscription now or at the end of its period."""

    def work() -> Done[SubscriptionOutcome]:
        before = _state(get_subscription(ctx.session, subscription_id))
        outcome = cancel_subscription(
            ctx.session, gateway, ctx.settings, subscription_id, at_period_end=at_period_end
        )
        after = {**_state(outcome.subscription), "at_period_end": at_period_end}
        return Done(outcome, before=before, after=after)

    return perform(ctx, CANCEL, subscription_id, work)


def resume(ctx: Context, gateway: StripeGateway, subscription_id: str) -> SubscriptionOutcome:
    """Undo a cancellation at period end."""

    def work() -> Done[SubscriptionOutcome]:
        before = _state(get_subscription(ctx.session, subscription_id))
        outcome = resume_subscription(ctx.session, gateway, ctx.settings, subscription_id)
        return Done(outcome, before=before, after=_state(outcome.subscription))

    return perform(ctx, RESUME, subscription_id, work)
