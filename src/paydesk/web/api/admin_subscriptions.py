"""Admin API: subscriptions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from paydesk import queries
from paydesk.admin_actions import subscriptions
from paydesk.auth.roles import Permission
from paydesk.billing.subscriptions import (
    SubscriptionOutcome,
    get_subscription,
)
from paydesk.db.models import Subscription
from paydesk.web.api.admin_auth import AuditFailures, ContextDep, require, require_action
from paydesk.web.api.deps import GatewayDep, IdempotencyKeyDep, SessionDep
from paydesk.web.api.pagination import (
    CreatedGte,
    CreatedLt,
    Cursor,
    Limit,
    page_of,
)
from paydesk.web.api.schemas import (
    CancelBody,
    Page,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionResult,
    TierChange,
    TierKey,
    error_responses,
)

router = APIRouter(
    prefix="/api/admin",
    tags=["admin: subscriptions"],
    dependencies=[AuditFailures, require(Permission.READ)],
)

_ERRORS = error_responses(402, 404, 409, 422, 503)


def result(outcome: SubscriptionOutcome) -> SubscriptionResult:
    """The API view of a subscription action's outcome."""
    return SubscriptionResult(
        subscription=SubscriptionOut.model_validate(outcome.subscription),
        client_secret=outcome.client_secret,
        payment_status=outcome.payment_status,
    )


@router.get("/subscriptions", summary="List subscriptions")
def list_subscriptions(
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    tier: Annotated[TierKey | None, Query()] = None,
    customer: Annotated[str | None, Query(max_length=255)] = None,
    created_gte: CreatedGte = None,
    created_lt: CreatedLt = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> Page[SubscriptionOut]:
    """Subscriptions, newest first."""
    query = queries.subscriptions(
        queries.SubscriptionFilter(
            status=status,
            tier=tier,
            customer=customer,
            created_gte=created_gte,
            created_lt=created_lt,
        )
    )
    return page_of(session, Subscription, query, cursor, limit, SubscriptionOut)


@router.get("/subscriptions/{subscription_id}", summary="One subscription", responses=_ERRORS)
def retrieve(subscription_id: str, session: SessionDep) -> SubscriptionOut:
    """A subscription by id."""
    return SubscriptionOut.model_validate(get_subscription(session, subscription_id))


@router.post(
    "/subscriptions",
    summary="Subscribe a customer",
    responses=_ERRORS,
    status_code=201,
    dependencies=[require_action(subscriptions.CREATE)],
)
def create(
    body: SubscriptionCreate, ctx: ContextDep, gateway: GatewayDep, key: IdempotencyKeyDep
) -> SubscriptionResult:
    """Subscribe to a tier: Free needs no card; a paid tier is charged with
    ``payment_method``, or left ``incomplete`` with a ``client_secret`` to confirm."""
    outcome = subscriptions.create(
        ctx,
        gateway,
        body.customer,
        tier=body.tier,
        request_key=key or uuid.uuid4().hex,
        payment_method=body.payment_method,
    )
    return result(outcome)


@router.post(
    "/subscriptions/{subscription_id}/tier",
    summary="Change tier",
    responses=_ERRORS,
    dependencies=[require_action(subscriptions.CHANGE_TIER)],
)
def change(
    subscription_id: str,
    body: TierChange,
    ctx: ContextDep,
    gateway: GatewayDep,
    key: IdempotencyKeyDep,
) -> SubscriptionResult:
    """Upgrade (prorated, invoiced now) or downgrade (prorated credit) at once."""
    outcome = subscriptions.set_tier(
        ctx,
        gateway,
        subscription_id,
        tier=body.tier,
        request_key=key or uuid.uuid4().hex,
        payment_method=body.payment_method,
    )
    return result(outcome)


@router.post(
    "/subscriptions/{subscription_id}/cancel",
    summary="Cancel",
    responses=_ERRORS,
    dependencies=[require_action(subscriptions.CANCEL)],
)
def cancel(
    subscription_id: str, body: CancelBody, ctx: ContextDep, gateway: GatewayDep
) -> SubscriptionResult:
    """Cancel now, or at the end of the current period (``at_period_end``)."""
    return result(
        subscriptions.cancel(ctx, gateway, subscription_id, at_period_end=body.at_period_end)
    )


@router.post(
    "/subscriptions/{subscription_id}/resume",
    summary="Resume",
    responses=_ERRORS,
    dependencies=[require_action(subscriptions.RESUME)],
)
def resume(subscription_id: str, ctx: ContextDep, gateway: GatewayDep) -> SubscriptionResult:
    """Undo a cancellation at period end, before the period ends."""
    return result(subscriptions.resume(ctx, gateway, subscription_id))
