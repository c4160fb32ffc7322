"""Admin actions: permission check, domain service, audit entry — in one place.

The console and the Admin API call these same functions, so a role is refused
the same action in both, and every mutation is audited the same way (with the
state before and after). The caller's unit of work commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from paydesk.auth import audit, roles
from paydesk.auth.accounts import Principal
from paydesk.auth.roles import Permission
from paydesk.billing.payments import get_payment
from paydesk.billing.refunds import RefundRequest, refund_payment
from paydesk.billing.subscriptions import (
    SubscriptionOutcome,
    cancel_subscription,
    change_tier,
    get_subscription,
    resume_subscription,
)
from paydesk.db.models import Refund, StripeEvent, Subscription
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway
from paydesk.webhooks import operations


@dataclass(frozen=True)
class Context:
    """Who acts, from where, under which settings."""

    session: Session
    settings: Settings
    principal: Principal
    source_address: str | None
    via: str  # "console" | "api"

    def authorize(self, permission: Permission) -> None:
        """``PermissionDenied`` unless the principal's role holds ``permission``."""
        roles.check(self.principal.role, permission, live=self.settings.key_mode == "live")

    def record(
        self,
        action: str,
        target: str | None,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Append the audit entry of an action."""
        audit.record(
            self.session,
            self.settings,
            actor=self.principal.actor,
            action=action,
            target=target,
            before=before,
            after={**(after or {}), "via": self.via},
            source_address=self.source_address,
        )


def _subscription_state(row: Subscription) -> dict[str, Any]:
    return {
        "status": row.status,
        "tier": row.tier,
        "cancel_at_period_end": row.cancel_at_period_end,
    }


def refund(ctx: Context, gateway: StripeGateway, request: RefundRequest) -> Refund:
    """Refund a payment in full or in part; ``requested_by`` is the acting admin."""
    ctx.authorize(Permission.REFUNDS_CREATE)
    payment = get_payment(ctx.session, request.payment_id)
    before = {"amount_refunded": payment.amount_refunded, "amount": payment.amount}
    request = RefundRequest(
        payment_id=request.payment_id,
        requested_by=ctx.principal.actor,
        amount=request.amount,
        reason=request.reason,
        note=request.note,
        request_key=request.request_key,
    )
    row = refund_payment(ctx.session, gateway, request)
    ctx.record(
        "refund.create",
        request.payment_id,
        before=before,
        after={
            "refund": row.stripe_id,
            "amount": row.amount,
            "currency": row.currency,
            "reason": row.reason,
            "status": row.status,
        },
    )
    return row


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
    ctx.authorize(Permission.SUBSCRIPTIONS_CHANGE_TIER)
    before = _subscription_state(get_subscription(ctx.session, subscription_id))
    outcome = change_tier(
        ctx.session,
        gateway,
        ctx.settings,
        subscription_id,
        tier=tier,
        request_key=request_key,
        payment_method=payment_method,
    )
    ctx.record(
        "subscription.change_tier",
        subscription_id,
        before=before,
        after=_subscription_state(outcome.subscription),
    )
    return outcome


def cancel(
    ctx: Context, gateway: StripeGateway, subscription_id: str, *, at_period_end: bool
) -> SubscriptionOutcome:
    """Cancel a subscription now or at the end of its period."""
    ctx.authorize(Permission.SUBSCRIPTIONS_CANCEL)
    before = _subscription_state(get_subscription(ctx.session, subscription_id))
    outcome = cancel_subscription(
        ctx.session, gateway, ctx.settings, subscription_id, at_period_end=at_period_end
    )
    ctx.record(
        "subscription.cancel",
        subscription_id,
        before=before,
        after={**_subscription_state(outcome.subscription), "at_period_end": at_period_end},
    )
    return outcome


def resume(ctx: Context, gateway: StripeGateway, subscription_id: str) -> SubscriptionOutcome:
    """Undo a cancellation at period end."""
    ctx.authorize(Permission.SUBSCRIPTIONS_RESUME)
    before = _subscription_state(get_subscription(ctx.session, subscription_id))
    outcome = resume_subscription(ctx.session, gateway, ctx.settings, subscription_id)
    ctx.record(
        "subscription.resume",
        subscription_id,
        before=before,
        after=_subscription_state(outcome.subscription),
    )
    return outcome


def replay_event(ctx: Context, event_id: str) -> StripeEvent:
    """Make a stored webhook event due again (the worker applies it)."""
    ctx.authorize(Permission.EVENTS_REPLAY)
    row = operations.get_event(ctx.session, event_id)
    before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
    row = operations.replay(ctx.session, event_id)
    ctx.record("event.replay", event_id, before=before, after={"status": row.status})
    return row
