"""Admin API: subscriptions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from paydesk import queries
from paydesk.auth import actions
from paydesk.auth.roles import Permission
from paydesk.billing.customers import get_customer
from paydesk.billing.subscriptions import (
    SubscriptionOutcome,
    create_subscription,
    get_subscription,
)
from paydesk.db.models import Subscription
from paydesk.web.api.admin_auth import AuditFailures, PrincipalDep, record, require, source_address
from paydesk.web.api.deps import GatewayDep, IdempotencyKeyDep, SessionDep, SettingsDep
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
    dependencies=[require(Permission.SUBSCRIPTIONS_CREATE, audit_as="subscription.create")],
)
def create(
    body: SubscriptionCreate,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    key: IdempotencyKeyDep,
    principal: PrincipalDep,
    http: Request,
) -> SubscriptionResult:
    """Subscribe to a tier: Free needs no card; a paid tier is charged with
    ``payment_method``, or left ``incomplete`` with a ``client_secret`` to confirm."""
    customer = get_customer(session, body.customer)
    outcome = create_subscription(
        session,
        gateway,
        settings,
        customer,
        tier=body.tier,
        request_key=key or uuid.uuid4().hex,
        payment_method=body.payment_method,
    )
    record(
        http,
        session,
        settings,
        principal,
        "subscription.create",
        outcome.subscription.stripe_id,
        after={"tier": body.tier, "status": outcome.subscription.status},
    )
    return result(outcome)


@router.post(
    "/subscriptions/{subscription_id}/tier",
    summary="Change tier",
    responses=_ERRORS,
    dependencies=[
        require(Permission.SUBSCRIPTIONS_CHANGE_TIER, audit_as="subscription.change_tier")
    ],
)
def change(
    subscription_id: str,
    body: TierChange,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    key: IdempotencyKeyDep,
    principal: PrincipalDep,
    http: Request,
) -> SubscriptionResult:
    """Upgrade (prorated, invoiced now) or downgrade (prorated credit) at once."""
    ctx = actions.Context(session, settings, principal, source_address(http), "api")
    outcome = actions.set_tier(
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
    dependencies=[require(Permission.SUBSCRIPTIONS_CANCEL, audit_as="subscription.cancel")],
)
def cancel(
    subscription_id: str,
    body: CancelBody,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    http: Request,
) -> SubscriptionResult:
    """Cancel now, or at the end of the current period (``at_period_end``)."""
    ctx = actions.Context(session, settings, principal, source_address(http), "api")
    return result(actions.cancel(ctx, gateway, subscription_id, at_period_end=body.at_period_end))


@router.post(
    "/subscriptions/{subscription_id}/resume",
    summary="Resume",
    responses=_ERRORS,
    dependencies=[require(Permission.SUBSCRIPTIONS_RESUME, audit_as="subscription.resume")],
)
def resume(
    subscription_id: str,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    http: Request,
) -> SubscriptionResult:
    """Undo a cancellation at period end, before the period ends."""
    ctx = actions.Context(session, settings, principal, source_address(http), "api")
    return result(actions.resume(ctx, gateway, subscription_id))
