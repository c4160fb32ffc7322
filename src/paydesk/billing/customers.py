"""Customers: one Stripe customer per app user, created on first need."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paydesk.billing.mirror import apply_customer
from paydesk.db.models import Customer
from paydesk.errors import Conflict, NotFound
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key


def customer_for_user(session: Session, user_id: str) -> Customer | None:
    """The mirrored customer of an app user, if any."""
    return session.scalars(select(Customer).where(Customer.user_id == user_id)).one_or_none()


# The guide's troubleshooting entry for "Customer not found", as the explanation.
CUSTOMER_NOT_FOUND_HINT = (
    "Verify the customer id, check whether the customer was deleted, and make sure "
    "Paydesk uses the right Stripe account and mode (test vs live)."
)


def get_customer(
    session: Session, stripe_customer_id: str, *, include_deleted: bool = False
) -> Customer:
    """A mirrored customer by Stripe id: ``NotFound`` (404) when unknown, ``Conflict``
    (409, ``customer_deleted``) when deleted in Stripe unless ``include_deleted``
    (showing it: its history stays readable; acting on it is refused, as Stripe would
    answer "No such customer")."""
    row = session.scalars(
        select(Customer).where(Customer.stripe_id == stripe_customer_id)
    ).one_or_none()
    if row is None:
        raise NotFound(
            f"Customer not found: no customer '{stripe_customer_id[:255]}'. "
            + CUSTOMER_NOT_FOUND_HINT,
            code="customer_not_found",
        )
    if row.deleted and not include_deleted:
        raise Conflict(
            f"Customer not found in Stripe: '{row.stripe_id}' was deleted there, so "
            "nothing can be created for it. " + CUSTOMER_NOT_FOUND_HINT,
            code="customer_deleted",
        )
    return row


def ensure_customer(
    session: Session,
    gateway: StripeGateway,
    *,
    user_id: str,
    email: str | None = None,
    name: str | None = None,
) -> Customer:
    """The user's customer, created in Stripe and mirrored on first need.

    Concurrent first requests for one user agree: they send Stripe the same
    idempotency key (so Stripe creates one customer), and the unique ``user_id``
    lets only one row in; the other request re-reads it.
    """
    existing = customer_for_user(session, user_id)
    if existing is not None:
        return existing
    created = gateway.create_customer(
        email=email,
        name=name,
        metadata={"paydesk_user_id": user_id},
        key=operation_key("customer", user_id),
    )
    try:
        with session.begin_nested():
            row, _ = apply_customer(session, created, int(time.time()))
            row.user_id = user_id
            session.flush()
    except IntegrityError:
        row = session.scalars(select(Customer).where(Customer.user_id == user_id)).one()
    return row
