"""Apply Stripe objects (plain dicts, as in API responses and event payloads) to the mirror.

Both the domain services (after an API call) and the webhook worker (for an
event) write through these functions, so there is one mapping per object type.
Each ``apply_*`` returns the row and whether it was written: a row whose
``source_time`` is newer than the incoming information is left as it is, and the
caller (the webhook worker) decides whether to re-fetch the object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paydesk.db.models import (
    Customer,
    Dispute,
    Invoice,
    Payment,
    Price,
    Product,
    Refund,
    Subscription,
)
from paydesk.db.models.base import StripeMirrorMixin

StripeObject = Mapping[str, Any]
Row = TypeVar("Row", bound=StripeMirrorMixin)


def ts(value: Any) -> datetime | None:
    """A Stripe Unix timestamp as an aware datetime (None stays None)."""
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def ref(value: Any) -> str | None:
    """The id of a field that may be an id or an expanded object."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return str(found) if found is not None else None
    return None


ROW_CACHE = "paydesk.mirror_rows"


def row_cache(session: Session) -> dict[tuple[type[Any], str], Any] | None:
    """The session's cache of mirror rows by (model, stripe id), if a caller enabled one.

    A batch writer (the webhook worker) loads the rows of a whole batch in one query
    per table and puts them here (None for ids not stored yet), so each ``apply_*``
    skips its own lookup. The caller owns its validity (it drops it on rollback).
    """
    cache: dict[tuple[type[Any], str], Any] | None = session.info.get(ROW_CACHE)
    return cache


DEFER_FLUSH = "paydesk.mirror_defer_flush"


def flush(session: Session) -> None:
    """Flush the mirror's writes now, unless a batch writer defers them to its batch's end.

    The webhook worker's optimistic pass sets ``session.info[DEFER_FLUSH]`` together
    with the row cache and flushes once per batch: every lookup of a mirror row then
    goes through the cache (the identity map), so events of one batch still see each
    other's unflushed effects, and any error the flush raises fails the whole pass
    (which the worker then redoes with a savepoint and a flush per event). Everyone
    else (API requests) flushes after each write, as before.
    """
    if not (session.info.get(DEFER_FLUSH) and row_cache(session) is not None):
        session.flush()


def find(session: Session, model: type[Row], stripe_id: str) -> Row | None:
    """The mirror row of ``stripe_id``: from the batch's row cache if set, else a query."""
    cache = row_cache(session)
    if cache is not None and (model, stripe_id) in cache:
        cached: Row | None = cache[(model, stripe_id)]
        return cached
    row = session.scalars(select(model).where(model.stripe_id == stripe_id)).one_or_none()
    if cache is not None and row is not None:
        cache[(model, stripe_id)] = row
    return row


_SCALAR_DEFAULTS: dict[type[Any], dict[str, Any]] = {}


def _scalar_defaults(model: type[Any]) -> dict[str, Any]:
    """The constant column defaults of ``model`` (what a flush would fill in)."""
    found = _SCALAR_DEFAULTS.get(model)
    if found is None:
        found = {}
        for attribute in inspect(model).column_attrs:
            default = attribute.columns[0].default
            if default is not None and default.is_scalar:
                found[attribute.key] = default.arg
        _SCALAR_DEFAULTS[model] = found
    return found


def _get_or_create(session: Session, model: type[Row], stripe_id: str, **defaults: Any) -> Row:
    cache = row_cache(session)
    if cache is not None and (model, stripe_id) in cache:
        # A cached None means "known not to exist yet": go straight to the insert.
        cached: Row | None = cache[(model, stripe_id)]
        if cached is not None:
            return cached
    else:
        row = session.scalars(select(model).where(model.stripe_id == stripe_id)).one_or_none()
        if row is not None:
            if cache is not None:
                cache[(model, stripe_id)] = row
            return row
    # Two writers (the API call and its webhook) may insert the same object at once:
    # the loser of the unique constraint re-reads the winner's row.
    if cache is not None:
        # A batch writer that retries the whole batch on any error (the webhook
        # worker) needs no savepoint: a lost race aborts the batch and it is redone.
        # The constant defaults are set here, so a row whose flush is deferred reads
        # as it would after one (``source_time`` 0, amounts 0, flags False).
        row = model()
        for name, value in {**_scalar_defaults(model), **defaults}.items():
            setattr(row, name, value)
        row.stripe_id = stripe_id
        session.add(row)
        flush(session)
        cache[(model, stripe_id)] = row
        return row
    try:
        with session.begin_nested():
            row = model()
            row.stripe_id = stripe_id
            for name, value in defaults.items():
                setattr(row, name, value)
            session.add(row)
            session.flush()
    except IntegrityError:
        row = session.scalars(select(model).where(model.stripe_id == stripe_id)).one()
    if cache is not None:
        cache[(model, stripe_id)] = row
    return row


def _apply(
    session: Session,
    model: type[Row],
    obj: StripeObject,
    source_time: int,
    fill: Callable[[Row], None],
    defaults: dict[str, Any],
) -> tuple[Row, bool]:
    row = _get_or_create(session, model, str(obj["id"]), **defaults)
    if row.source_time > source_time:
        return row, False
    row.livemode = bool(obj.get("livemode", False))
    row.stripe_created = int(obj.get("created") or row.stripe_created or 0)
    row.source_time = source_time
    fill(row)
    flush(session)
    return row, True


def apply_customer(session: Session, obj: StripeObject, source_time: int) -> tuple[Customer, bool]:
    """Mirror a Stripe customer (or a ``deleted`` stub)."""

    def fill(row: Customer) -> None:
        if obj.get("deleted"):
            row.deleted = True
            return
        row.email = obj.get("email")
        row.name = obj.get("name")
        settings = obj.get("invoice_settings") or {}
        row.default_payment_method_id = ref(settings.get("default_payment_method"))
        metadata = obj.get("metadata") or {}
        if row.user_id is None and metadata.get("paydesk_user_id"):
            row.user_id = str(metadata["paydesk_user_id"])

    return _apply(session, Customer, obj, source_time, fill, {})


def apply_product(session: Session, obj: StripeObject, source_time: int) -> tuple[Product, bool]:
    """Mirror a Stripe product."""

    def fill(row: Product) -> None:
        row.name = str(obj.get("name") or row.name or "")
        row.description = obj.get("description")
        row.active = bool(obj.get("active", True)) and not obj.get("deleted")

    return _apply(session, Product, obj, source_time, fill, {"name": ""})


def apply_price(
    session: Session, obj: StripeObject, source_time: int, tier: str | None = None
) -> tuple[Price, bool]:
    """Mirror a Stripe price; ``tier`` names it when it is a configured tier price."""

    def fill(row: Price) -> None:
        recurring = obj.get("recurring") or {}
        row.product_id = ref(obj.get("product")) or row.product_id or ""
        row.unit_amount = obj.get("unit_amount")
        row.currency = str(obj.get("currency") or row.currency)
        row.recurring_interval = recurring.get("interval")
        row.recurring_interval_count = recurring.get("interval_count")
        row.lookup_key = obj.get("lookup_key")
        row.active = bool(obj.get("active", True)) and not obj.get("deleted")
        if tier is not None:
            row.tier = tier

    return _apply(session, Price, obj, source_time, fill, {"product_id": "", "currency": "usd"})


def _card_of(charge: StripeObject | None) -> Mapping[str, Any]:
    if not charge:
        return {}
    details = charge.get("payment_method_details") or {}
    return details.get("card") or {}


def apply_charge_details(session: Session, charge: StripeObject) -> Payment | None:
    """Fold a charge into its payment: card brand/last4/expiry, refunded amount, dispute flag.

    Order-independent on purpose: these fields only grow (refunded amount, the
    dispute flag) or never change (card), so any delivery order gives one result.
    """
    intent_id = ref(charge.get("payment_intent"))
    if intent_id is None:
        return None
    row = find(session, Payment, intent_id)
    if row is None:
        return None
    card = _card_of(charge)
    if card:
        row.card_brand = card.get("brand")
        row.card_last4 = card.get("last4")
        row.card_exp_month = card.get("exp_month")
        row.card_exp_year = card.get("exp_year")
    row.latest_charge_id = row.latest_charge_id or str(charge["id"])
    row.amount_refunded = max(row.amount_refunded, int(charge.get("amount_refunded") or 0))
    row.disputed = row.disputed or bool(charge.get("disputed"))
    if charge.get("failure_code") and row.status != "succeeded":
        row.failure_code = charge.get("failure_code")
        row.failure_message = charge.get("failure_message")
        outcome = charge.get("outcome") or {}
        row.decline_code = outcome.get("reason") or row.decline_code
    flush(session)
    return row


def apply_payment_intent(
    session: Session, obj: StripeObject, source_time: int
) -> tuple[Payment, bool]:
    """Mirror a PaymentIntent; an expanded ``latest_charge`` also fills the card fields."""

    def fill(row: Payment) -> None:
        row.customer_id = ref(obj.get("customer"))
        row.amount = int(obj["amount"])
        row.amount_received = int(obj.get("amount_received") or 0)
        row.currency = str(obj["currency"])
        row.status = str(obj["status"])
        row.capture_method = str(obj.get("capture_method") or "automatic")
        row.description = obj.get("description")
        row.receipt_email = obj.get("receipt_email")
        row.payment_method_id = ref(obj.get("payment_method")) or row.payment_method_id
        row.latest_charge_id = ref(obj.get("latest_charge")) or row.latest_charge_id
        error = obj.get("last_payment_error") or {}
        if error:
            row.failure_code = error.get("code")
            row.decline_code = error.get("decline_code")
            row.failure_message = error.get("message")
        elif row.status == "succeeded":
            row.failure_code = row.decline_code = row.failure_message = None
        payment_method = obj.get("payment_method")
        if isinstance(payment_method, Mapping) and payment_method.get("card"):
            card = payment_method["card"]
            row.card_brand = card.get("brand")
            row.card_last4 = card.get("last4")
            row.card_exp_month = card.get("exp_month")
            row.card_exp_year = card.get("exp_year")

    row, written = _apply(
        session,
        Payment,
        obj,
        source_time,
        fill,
        {"amount": int(obj["amount"]), "currency": str(obj["currency"]), "status": "unknown"},
    )
    charge = obj.get("latest_charge")
    if isinstance(charge, Mapping):
        apply_charge_details(session, charge)
    return row, written


def apply_refund(
    session: Session,
    obj: StripeObject,
    source_time: int,
    *,
    note: str | None = None,
    requested_by: str | None = None,
) -> tuple[Refund, bool]:
    """Mirror a refund; ``note`` and ``requested_by`` are Paydesk's own, set once."""

    def fill(row: Refund) -> None:
        row.payment_intent_id = ref(obj.get("payment_intent"))
        row.charge_id = ref(obj.get("charge"))
        row.amount = int(obj["amount"])
        row.currency = str(obj["currency"])
        row.status = str(obj.get("status") or "pending")
        row.reason = obj.get("reason")
        row.failure_reason = obj.get("failure_reason")
        metadata = obj.get("metadata") or {}
        row.requested_by = row.requested_by or requested_by or metadata.get("requested_by")
        row.note = row.note or note

    _lock_payment(session, ref(obj.get("payment_intent")))
    return _apply(
        session,
        Refund,
        obj,
        source_time,
        fill,
        {"amount": int(obj["amount"]), "currency": str(obj["currency"]), "status": "pending"},
    )


def _lock_payment(session: Session, intent_id: str | None) -> None:
    """Lock the refunded payment's row before the refund's (PostgreSQL; SQLite has one writer).

    A refund request writes the payment, then the refund; the worker applying a batch
    with ``refund.*`` and ``charge.refunded`` of the same payment would otherwise take
    the refund first and the payment second, and the two deadlock. One order for
    everyone (payment, then refund) leaves nothing to deadlock on.
    """
    if intent_id is None or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(select(Payment.id).where(Payment.stripe_id == intent_id).with_for_update())


_DISPUTE_CLOSED = {"won", "lost", "warning_closed", "prevented"}


def apply_dispute(session: Session, obj: StripeObject, source_time: int) -> tuple[Dispute, bool]:
    """Mirror a dispute; ``closed_at`` is when Paydesk first saw it closed."""

    def fill(row: Dispute) -> None:
        row.charge_id = ref(obj.get("charge"))
        row.payment_intent_id = ref(obj.get("payment_intent"))
        row.amount = int(obj["amount"])
        row.currency = str(obj["currency"])
        row.status = str(obj["status"])
        row.reason = str(obj.get("reason") or "general")
        details = obj.get("evidence_details") or {}
        row.evidence_due_by = ts(details.get("due_by"))
        if row.status in _DISPUTE_CLOSED and row.closed_at is None:
            row.closed_at = ts(source_time)

    return _apply(
        session,
        Dispute,
        obj,
        source_time,
        fill,
        {
            "amount": int(obj["amount"]),
            "currency": str(obj["currency"]),
            "status": str(obj["status"]),
            "reason": "general",
        },
    )


def apply_subscription(
    session: Session,
    obj: StripeObject,
    source_time: int,
    tier_of_price: Callable[[str], str | None] = lambda _price: None,
) -> tuple[Subscription, bool]:
    """Mirror a subscription; the period and price come from its first item."""

    def fill(row: Subscription) -> None:
        row.customer_id = ref(obj.get("customer")) or row.customer_id
        row.status = str(obj["status"])
        items = (obj.get("items") or {}).get("data") or []
        if items:
            item = items[0]
            price = item.get("price") or {}
            recurring = price.get("recurring") or {}
            row.item_id = item.get("id")
            row.price_id = ref(price)
            row.unit_amount = int(price.get("unit_amount") or 0)
            row.currency = str(price.get("currency") or row.currency)
            row.interval = str(recurring.get("interval") or "month")
            row.interval_count = int(recurring.get("interval_count") or 1)
            row.current_period_start = ts(item.get("current_period_start"))
            row.current_period_end = ts(item.get("current_period_end"))
            if row.price_id:
                row.tier = tier_of_price(row.price_id) or row.tier
        row.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
        row.cancel_at = ts(obj.get("cancel_at"))
        row.canceled_at = ts(obj.get("canceled_at"))
        row.ended_at = ts(obj.get("ended_at"))
        row.latest_invoice_id = ref(obj.get("latest_invoice"))
        row.default_payment_method_id = ref(obj.get("default_payment_method"))

    return _apply(
        session,
        Subscription,
        obj,
        source_time,
        fill,
        {"customer_id": ref(obj.get("customer")) or "", "status": str(obj["status"])},
    )


def invoice_subscription_id(obj: StripeObject) -> str | None:
    """The subscription of an invoice (``parent.subscription_details`` since 2025-03-31)."""
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return ref(details.get("subscription")) or ref(obj.get("subscription"))


def invoice_payment_intent_id(obj: StripeObject) -> str | None:
    """The PaymentIntent of an invoice's newest payment, if listed."""
    payments = (obj.get("payments") or {}).get("data") or []
    for payment in payments:
        intent = (payment.get("payment") or {}).get("payment_intent")
        if intent:
            return ref(intent)
    return None


def apply_invoice(session: Session, obj: StripeObject, source_time: int) -> tuple[Invoice, bool]:
    """Mirror an invoice."""

    def fill(row: Invoice) -> None:
        row.customer_id = ref(obj.get("customer"))
        row.subscription_id = invoice_subscription_id(obj)
        row.payment_intent_id = invoice_payment_intent_id(obj) or row.payment_intent_id
        row.status = obj.get("status")
        row.billing_reason = obj.get("billing_reason")
        row.amount_due = int(obj.get("amount_due") or 0)
        row.amount_paid = int(obj.get("amount_paid") or 0)
        row.currency = str(obj.get("currency") or row.currency)
        row.attempt_count = int(obj.get("attempt_count") or 0)
        row.period_start = ts(obj.get("period_start"))
        row.period_end = ts(obj.get("period_end"))
        transitions = obj.get("status_transitions") or {}
        row.paid_at = ts(transitions.get("paid_at"))

    return _apply(
        session, Invoice, obj, source_time, fill, {"currency": str(obj.get("currency") or "usd")}
    )
