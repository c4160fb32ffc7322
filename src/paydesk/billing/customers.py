"""Customers: one Stripe customer per app user, created on first need."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paydesk.billing.mirror import apply_customer
from paydesk.db.models import Customer
from paydesk.errors import NotFound
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key


def customer_for_user(session: Session, user_id: str) -> Customer | None:
    """The mirrored customer of an app user, if any."""
    return session.scalars(select(Customer).where(Customer.user_id == user_id)).one_or_none()


def get_customer(session: Session, stripe_customer_id: str) -> Customer:
    """A mirrored customer by Stripe id, or ``NotFound``."""
    row = session.scalars(
        select(Customer).where(Customer.stripe_id == stripe_customer_id)
    ).one_or_none()
    if row is None or row.deleted:
        raise NotFound(f"No such customer: '{stripe_customer_id}'.", code="customer_not_found")
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
