"""Admin actions on customers and the webhook inbox."""

from __future__ import annotations

from paydesk.admin_actions.core import Action, Context, Done, perform
from paydesk.auth.roles import Permission
from paydesk.billing.customers import ensure_customer
from paydesk.db.models import Customer, StripeEvent
from paydesk.stripe_gateway import StripeGateway
from paydesk.webhooks import operations

ENSURE_CUSTOMER = Action("customer.ensure", Permission.CUSTOMERS_WRITE)
REPLAY_EVENT = Action("event.replay", Permission.EVENTS_REPLAY)


def ensure_customer_for(
    ctx: Context,
    gateway: StripeGateway,
    *,
    user_id: str,
    email: str | None = None,
    name: str | None = None,
) -> Customer:
    """The app user's customer, created in Stripe on first need (one per user)."""

    def work() -> Done[Customer]:
        row = ensure_customer(ctx.session, gateway, user_id=user_id, email=email, name=name)
        return Done(row, target=row.stripe_id)

    return perform(ctx, ENSURE_CUSTOMER, None, work)


def replay_event(ctx: Context, event_id: str) -> StripeEvent:
    """Make a stored webhook event due again (the worker applies it)."""

    def work() -> Done[StripeEvent]:
        row = operations.get_event(ctx.session, event_id)
        before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
        row = operations.replay(ctx.session, event_id)
        return Done(row, before=before, after={"status": row.status})

    return perform(ctx, REPLAY_EVENT, event_id, work)
