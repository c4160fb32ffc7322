"""List, search and filter queries over the mirror, for the console and the Admin API alike.

One definition of what each filter and the search box match, so a search finds the
same rows on a console page, in its CSV export and through the Admin API. Search
(``q``) is trimmed and matches an object's id, a related id (charge, customer) or a
customer's email in any case (Stripe keeps an email in the case it was given;
admins type it as they remember it). Functions here build statements and
read pages; they never write.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, union
from sqlalchemy.orm import Session

from paydesk.db.models import Customer, Dispute, Payment, Refund, StripeEvent, Subscription
from paydesk.db.models.base import StripeMirrorMixin
from paydesk.errors import InvalidInput

__all__ = [
    "CURSOR_PATTERN",
    "CustomerFilter",
    "DisputeFilter",
    "EventFilter",
    "PaymentFilter",
    "RefundFilter",
    "SubscriptionFilter",
    "customers",
    "decode_cursor",
    "disputes",
    "encode_cursor",
    "events",
    "iter_all",
    "page",
    "payments",
    "refunds",
    "subscriptions",
]

Row = TypeVar("Row", bound=StripeMirrorMixin)

# A cursor is "<stripe_created>_<id>" of the last row shown. Any value that matches the
# pattern is a position a list can start after (numbers bounded to fit a 64-bit column:
# no overflow reaches the database).
CURSOR_PATTERN = r"^[0-9]{1,12}_[0-9]{1,18}$"
MAX_SEARCH = 320  # the longest email address


def encode_cursor(row: Any) -> str:
    """A cursor after ``row`` (its creation time and primary key)."""
    return f"{int(row.stripe_created)}_{int(row.id)}"


def decode_cursor(cursor: str) -> tuple[int, int]:
    """``(stripe_created, id)`` from a cursor, or ``InvalidInput`` naming ``cursor``."""
    created, sep, row_id = cursor.partition("_")
    if (
        not sep
        or not (1 <= len(created) <= 12 and created.isascii() and created.isdigit())
        or not (1 <= len(row_id) <= 18 and row_id.isascii() and row_id.isdigit())
    ):
        raise InvalidInput("The cursor is not one this API returned.", field="cursor")
    return int(created), int(row_id)


def page(
    session: Session, model: type[Row], query: Select[Any], cursor: str | None, limit: int
) -> tuple[Sequence[Row], str | None]:
    """One page of ``query`` (newest first) and the cursor of the next page, if any."""
    column_created = model.stripe_created
    column_id = model.id  # type: ignore[attr-defined]  # every mirror table has an int id
    if cursor:
        created, row_id = decode_cursor(cursor)
        query = query.where(
            or_(column_created < created, and_(column_created == created, column_id < row_id))
        )
    rows: Sequence[Row] = session.scalars(
        query.order_by(column_created.desc(), column_id.desc()).limit(limit + 1)
    ).all()
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1])
    return rows, None


def iter_all(
    session: Session, model: type[Row], query: Select[Any], *, batch: int = 500
) -> Iterator[Row]:
    """Every row of ``query``, newest first, read in keyset pages (for exports)."""
    cursor: str | None = None
    while True:
        rows, cursor = page(session, model, query, cursor, batch)
        yield from rows
        if cursor is None:
            return


def _search(q: str | None) -> str | None:
    text = (q or "").strip()[:MAX_SEARCH]
    return text or None


def _email_is(text: str) -> ColumnElement[bool]:
    # Served by the index on lower(email).
    return func.lower(Customer.email) == text.lower()


def _customers_by_email(text: str) -> Select[Any]:
    return select(Customer.stripe_id).where(_email_is(text))


def _created(
    query: Select[Any],
    model: type[StripeMirrorMixin],
    gte: datetime | None,
    lt: datetime | None,
) -> Select[Any]:
    if gte is not None:
        query = query.where(model.stripe_created >= int(gte.timestamp()))
    if lt is not None:
        query = query.where(model.stripe_created < int(lt.timestamp()))
    return query


@dataclass(frozen=True)
class PaymentFilter:
    """Filters of payment lists; ``q`` is a payment, charge or customer id or an email."""

    status: str | None = None
    customer: str | None = None
    currency: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    q: str | None = None


def payments(filters: PaymentFilter) -> Select[Any]:
    """Payments matching ``filters`` (order with ``page``)."""
    query = select(Payment)
    if filters.status:
        query = query.where(Payment.status == filters.status[:32])
    if filters.customer:
        query = query.where(Payment.customer_id == filters.customer[:255])
    if filters.currency:
        query = query.where(Payment.currency == filters.currency[:3].lower())
    query = _created(query, Payment, filters.created_gte, filters.created_lt)
    q = _search(filters.q)
    if q:
        # A UNION of lookups, each served by its own index: an OR of them makes the
        # database walk every payment (20 s at 5M payments).
        matching = union(
            select(Payment.id).where(Payment.stripe_id == q),
            select(Payment.id).where(Payment.latest_charge_id == q),
            select(Payment.id).where(Payment.customer_id == q),
            select(Payment.id).where(Payment.customer_id.in_(_customers_by_email(q))),
        )
        query = query.where(Payment.id.in_(matching))
    return query


@dataclass(frozen=True)
class SubscriptionFilter:
    """Filters of subscription lists; ``q`` is a subscription or customer id or an email."""

    status: str | None = None
    tier: str | None = None
    customer: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    q: str | None = None


def subscriptions(filters: SubscriptionFilter) -> Select[Any]:
    """Subscriptions matching ``filters``."""
    query = select(Subscription)
    if filters.status:
        query = query.where(Subscription.status == filters.status[:32])
    if filters.tier:
        query = query.where(Subscription.tier == filters.tier[:32])
    if filters.customer:
        query = query.where(Subscription.customer_id == filters.customer[:255])
    query = _created(query, Subscription, filters.created_gte, filters.created_lt)
    q = _search(filters.q)
    if q:
        # Index lookups in a UNION, as for payments: an OR with the email subquery
        # would read every subscription.
        matching = union(
            select(Subscription.id).where(Subscription.stripe_id == q),
            select(Subscription.id).where(Subscription.customer_id == q),
            select(Subscription.id).where(Subscription.customer_id.in_(_customers_by_email(q))),
        )
        query = query.where(Subscription.id.in_(matching))
    return query


@dataclass(frozen=True)
class CustomerFilter:
    """Filters of customer lists; ``q`` is a customer id, an app user id or an email."""

    email: str | None = None
    user_id: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    q: str | None = None


def customers(filters: CustomerFilter) -> Select[Any]:
    """Customers (not deleted) matching ``filters``."""
    query = select(Customer).where(Customer.deleted.is_(False))
    email = _search(filters.email)
    if email:
        query = query.where(_email_is(email))
    if filters.user_id:
        query = query.where(Customer.user_id == filters.user_id[:255])
    query = _created(query, Customer, filters.created_gte, filters.created_lt)
    q = _search(filters.q)
    if q:
        query = query.where(or_(_email_is(q), Customer.stripe_id == q, Customer.user_id == q))
    return query


@dataclass(frozen=True)
class RefundFilter:
    """Filters of refund lists; ``q`` is a refund, payment or charge id."""

    payment: str | None = None
    status: str | None = None
    customer: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    q: str | None = None


def refunds(filters: RefundFilter) -> Select[Any]:
    """Refunds matching ``filters``."""
    query = select(Refund)
    if filters.payment:
        query = query.where(Refund.payment_intent_id == filters.payment[:255])
    if filters.status:
        query = query.where(Refund.status == filters.status[:32])
    if filters.customer:
        of_customer = select(Payment.stripe_id).where(Payment.customer_id == filters.customer[:255])
        query = query.where(Refund.payment_intent_id.in_(of_customer))
    query = _created(query, Refund, filters.created_gte, filters.created_lt)
    q = _search(filters.q)
    if q:
        query = query.where(
            or_(Refund.stripe_id == q, Refund.payment_intent_id == q, Refund.charge_id == q)
        )
    return query


@dataclass(frozen=True)
class DisputeFilter:
    """Filters of dispute lists; ``q`` is a dispute, payment or charge id."""

    status: str | None = None
    reason: str | None = None
    payment: str | None = None
    customer: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    q: str | None = None


def disputes(filters: DisputeFilter) -> Select[Any]:
    """Disputes matching ``filters``."""
    query = select(Dispute)
    if filters.status:
        query = query.where(Dispute.status == filters.status[:32])
    if filters.reason:
        query = query.where(Dispute.reason == filters.reason[:64])
    if filters.payment:
        query = query.where(Dispute.payment_intent_id == filters.payment[:255])
    if filters.customer:
        of_customer = select(Payment.stripe_id).where(Payment.customer_id == filters.customer[:255])
        query = query.where(Dispute.payment_intent_id.in_(of_customer))
    query = _created(query, Dispute, filters.created_gte, filters.created_lt)
    q = _search(filters.q)
    if q:
        query = query.where(
            or_(Dispute.stripe_id == q, Dispute.payment_intent_id == q, Dispute.charge_id == q)
        )
    return query


@dataclass(frozen=True)
class EventFilter:
    """Filters of stored webhook events; ``object_ids`` narrows to events about those objects."""

    status: str | None = None
    type: str | None = None
    object_ids: tuple[str, ...] = ()


def events(
    session: Session, filters: EventFilter, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[StripeEvent], str | None]:
    """Stored events matching ``filters``, newest first, and the cursor of older ones.

    The cursor has the mirror lists' shape (``<created>_<row id>``).
    """
    query = select(StripeEvent)
    if filters.status:
        query = query.where(StripeEvent.status == filters.status[:16])
    if filters.type:
        query = query.where(StripeEvent.type == filters.type[:128])
    if filters.object_ids:
        query = query.where(StripeEvent.object_id.in_(filters.object_ids))
    if cursor:
        created, row_id = decode_cursor(cursor)
        query = query.where(
            or_(
                StripeEvent.created < created,
                and_(StripeEvent.created == created, StripeEvent.id < row_id),
            )
        )
    query = query.order_by(StripeEvent.created.desc(), StripeEvent.id.desc())
    rows = list(session.scalars(query.limit(limit + 1)))
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], f"{int(last.created)}_{int(last.id)}"
    return rows, None


def timeline(session: Session, object_ids: Sequence[str]) -> list[StripeEvent]:
    """Stored events about any of ``object_ids``, oldest first (a detail page's history)."""
    ids = [i for i in object_ids if i]
    if not ids:
        return []
    query = (
        select(StripeEvent)
        .where(StripeEvent.object_id.in_(ids))
        .order_by(StripeEvent.created, StripeEvent.id)
    )
    return list(session.scalars(query))


def refunds_of(session: Session, payment_id: str) -> list[Refund]:
    """A payment's refunds, oldest first."""
    query = (
        select(Refund)
        .where(Refund.payment_intent_id == payment_id)
        .order_by(Refund.stripe_created, Refund.id)
    )
    return list(session.scalars(query))


def customer_by_id(session: Session, customer_id: str | None) -> Customer | None:
    """The mirrored customer ``cus_…``, if any (deleted ones too: history stays readable)."""
    if not customer_id:
        return None
    return session.scalars(select(Customer).where(Customer.stripe_id == customer_id)).first()


def dispute_by_id(session: Session, dispute_id: str) -> Dispute | None:
    """The mirrored dispute ``dp_…``/``du_…``, if any."""
    return session.scalars(select(Dispute).where(Dispute.stripe_id == dispute_id[:255])).first()
