"""Admin API: customers and tiers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from paydesk import queries
from paydesk.admin_actions import operations
from paydesk.auth.roles import Permission
from paydesk.billing.customers import get_customer
from paydesk.billing.tiers import TIERS, configured_price_ids
from paydesk.db.models import Customer
from paydesk.web.api.admin_auth import AuditFailures, ContextDep, require, require_action
from paydesk.web.api.deps import GatewayDep, SessionDep, SettingsDep
from paydesk.web.api.pagination import (
    CreatedGte,
    CreatedLt,
    Cursor,
    Limit,
    page_of,
)
from paydesk.web.api.schemas import CustomerCreate, CustomerOut, MoneyOut, Page, TierOut

router = APIRouter(
    prefix="/api/admin",
    tags=["admin: customers and tiers"],
    dependencies=[AuditFailures, require(Permission.READ)],
)


@router.get("/tiers", summary="The three tiers and their configured prices")
def list_tiers(settings: SettingsDep) -> list[TierOut]:
    """Free, Premium and Enterprise with the price ids from ``STRIPE_PRICE_*``."""
    prices = configured_price_ids(settings)
    return [
        TierOut(
            key=tier.key,
            name=tier.name,
            description=tier.description,
            price=MoneyOut.of(tier.unit_amount, tier.currency),
            interval=tier.interval,
            price_id=prices[tier.key],
        )
        for tier in TIERS
    ]


@router.get("/customers", summary="List customers")
def list_customers(
    session: SessionDep,
    email: Annotated[
        str | None, Query(max_length=320, description="Email, case-insensitive")
    ] = None,
    user_id: Annotated[str | None, Query(max_length=255)] = None,
    created_gte: CreatedGte = None,
    created_lt: CreatedLt = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> Page[CustomerOut]:
    """Customers, newest first, with optional filters."""
    query = queries.customers(
        queries.CustomerFilter(
            email=email, user_id=user_id, created_gte=created_gte, created_lt=created_lt
        )
    )
    return page_of(session, Customer, query, cursor, limit, CustomerOut)


@router.get(
    "/customers/{customer_id}",
    summary="One customer",
    responses={404: {"description": "No such customer"}},
)
def retrieve_customer(customer_id: str, session: SessionDep) -> CustomerOut:
    """A customer by Stripe id; one deleted in Stripe is shown with ``deleted: true``
    (creating a payment or subscription for it answers 409 ``customer_deleted``)."""
    return CustomerOut.model_validate(get_customer(session, customer_id, include_deleted=True))


@router.post(
    "/customers",
    summary="Find or create an app user's customer",
    status_code=200,
    dependencies=[require_action(operations.ENSURE_CUSTOMER)],
)
def create_customer(body: CustomerCreate, ctx: ContextDep, gateway: GatewayDep) -> CustomerOut:
    """The customer of ``user_id``, created in Stripe on first need (one per user)."""
    row = operations.ensure_customer_for(
        ctx, gateway, user_id=body.user_id, email=body.email, name=body.name
    )
    return CustomerOut.model_validate(row)
