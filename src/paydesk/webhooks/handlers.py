"""What each event type does to the mirror.

Every handler is idempotent and order-proof:

- Objects with a state (payment intents, subscriptions, invoices, refunds,
  disputes, customers, products, prices) are written through ``billing.mirror``,
  which keeps the freshest information: an event older than the stored row is
  not applied; the object is re-fetched from Stripe instead (rate-limited), so
  the mirror converges on Stripe's current state whatever the delivery order.
  Two events of one object within the same second are ambiguous by timestamp
  alone; they are resolved by re-fetching too (or, without Stripe access, by the
  object's own status progression). A batch attempt fetches each object at most
  once (``BatchFetcher``): the savepoint redo of a batch reuses the answers its
  optimistic pass got from Stripe.
- Charge details only grow (refunded amount, dispute flag) or never change
  (card), so they are folded in whatever the order. A charge event whose
  payment is not mirrored yet fetches the payment (or is retried later).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.billing import mirror
from paydesk.db.models import (
    Customer,
    Dispute,
    Invoice,
    Payment,
    Price,
    Product,
    Refund,
    StripeEvent,
    Subscription,
)
from paydesk.db.models.base import StripeMirrorMixin
from paydesk.errors import NotFound, PaydeskError

Json = dict[str, Any]
TierOf = Callable[[str], str | None]


class Deferred(PaydeskError):
    """The event cannot be applied yet (a prerequisite is missing); retry later."""


class RefetchRateLimited(Deferred):
    """No re-fetch token free: not the event's fault, so retried soon and never parked."""

    code = "deferred"


class Fetcher:
    """Re-fetches objects from Stripe, at most ``rate`` per second (token bucket).

    ``retrieve`` maps an object type to a function returning the object as a dict
    (the gateway's ``retrieve_*``). When no token frees up within ``max_wait``
    seconds, ``Deferred`` is raised and the event is retried later.
    """

    def __init__(
        self,
        retrieve: Mapping[str, Callable[[str], Json]],
        *,
        rate: float = 10.0,
        burst: int = 20,
        max_wait: float = 2.0,
    ) -> None:
        self._retrieve = dict(retrieve)
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._max_wait = max_wait
        self._lock = threading.Lock()
        self.fetched = 0

    def can_fetch(self, object_type: str) -> bool:
        """Whether objects of this type can be re-fetched."""
        return object_type in self._retrieve

    def _take(self) -> None:
        deadline = time.monotonic() + self._max_wait
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self._rate
            if time.monotonic() + wait > deadline:
                raise RefetchRateLimited("Stripe re-fetch rate limit reached; retrying later.")
            time.sleep(wait)

    def fetch(self, object_type: str, object_id: str) -> Json | None:
        """The object as Stripe has it now; None if Stripe no longer has it."""
        self._take()
        self.fetched += 1
        try:
            return self._retrieve[object_type](object_id)
        except NotFound:
            return None


class BatchFetcher:
    """One batch attempt's view of a ``Fetcher``: each object is fetched at most once.

    Stripe's answer for an object (found or not) is kept for the batch attempt, so
    when a failing event makes the worker redo the batch with savepoints, the redo
    reuses what the first pass fetched instead of calling Stripe (and spending the
    rate limit) again. A fetch that raised (rate limit reached, Stripe unreachable)
    leaves nothing behind: the next ask for that object tries Stripe again.

    Made by the worker for one batch attempt and used only by the thread applying
    it, then cleared: a later attempt (a new batch) fetches afresh, and no answer is
    shared between workers or threads. The shared ``Fetcher`` still does the rate
    limiting and counts every call to Stripe (``fetched``).
    """

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        self._answers: dict[tuple[str, str], Json | None] = {}

    def can_fetch(self, object_type: str) -> bool:
        """Whether objects of this type can be re-fetched."""
        return self._fetcher.can_fetch(object_type)

    def fetch(self, object_type: str, object_id: str) -> Json | None:
        """The object as Stripe had it when first asked in this batch attempt; None if gone."""
        key = (object_type, object_id)
        if key in self._answers:
            # A copy each time: whatever a handler does to its object stays its own.
            return copy.deepcopy(self._answers[key])
        found = self._fetcher.fetch(object_type, object_id)  # raised: nothing kept
        self._answers[key] = copy.deepcopy(found)
        return found

    def clear(self) -> None:
        """Forget every answer (the batch attempt is over)."""
        self._answers.clear()


def gateway_fetcher(gateway: Any, *, rate: float = 10.0, max_wait: float = 2.0) -> Fetcher:
    """A ``Fetcher`` over a ``StripeGateway``'s ``retrieve_*`` methods."""
    return Fetcher(
        {
            "customer": gateway.retrieve_customer,
            "payment_intent": gateway.retrieve_payment_intent,
            "charge": gateway.retrieve_charge,
            "refund": gateway.retrieve_refund,
            "dispute": gateway.retrieve_dispute,
            "product": gateway.retrieve_product,
            "price": gateway.retrieve_price,
            "subscription": gateway.retrieve_subscription,
            "invoice": gateway.retrieve_invoice,
        },
        rate=rate,
        max_wait=max_wait,
    )


@dataclass
class Context:
    """What a handler works with: the worker's session, tier lookup, optional fetcher."""

    session: Session
    tier_of: TierOf = field(default=lambda _price: None)
    fetcher: Fetcher | BatchFetcher | None = None
    event_pk: int | None = None
    # (object id, event created) -> ids of events applied earlier in this batch, whose
    # ``processed`` status the worker writes only when the batch ends.
    applied_in_batch: Mapping[tuple[str, int], set[int]] = field(default_factory=dict)


# Status progressions used only to break a same-second tie without Stripe access.
_RANKS: dict[str, tuple[str, ...]] = {
    "payment_intent": (
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "canceled",
        "succeeded",
    ),
    "subscription": (
        "incomplete",
        "trialing",
        "active",
        "past_due",
        "unpaid",
        "paused",
        "incomplete_expired",
        "canceled",
    ),
    "invoice": ("draft", "open", "uncollectible", "void", "paid"),
    "refund": ("pending", "requires_action", "failed", "canceled", "succeeded"),
    "dispute": (
        "warning_needs_response",
        "warning_under_review",
        "needs_response",
        "under_review",
        "warning_closed",
        "prevented",
        "lost",
        "won",
    ),
}


def _rank(object_type: str, status: Any) -> int:
    order = _RANKS.get(object_type, ())
    return order.index(status) if status in order else -1


ApplyFn = Callable[[Context, Json, int], tuple[StripeMirrorMixin, bool]]


def _apply_customer(ctx: Context, obj: Json, t: int) -> tuple[StripeMirrorMixin, bool]:
    return mirror.apply_customer(ctx.session, obj, t)


def _apply_product(ctx: Context, obj: Json, t: int) -> tuple[StripeMirrorMixin, bool]:
    return mirror.apply_product(ctx.session, obj, t)


def _apply_price(ctx: Context, obj: Json, t: int) -> tuple[StripeMirrorMixin, bool]:
    return mirror.apply_price(ctx.session, obj, t, tier=ctx.tier_of(str(obj["id"])))


def _apply_payment_intent(ctx: Context, obj: Json, t: int) -> tuple[StripeMirrorMixin, bool]:
    new = _cached_or_loaded(ctx, Payment, str(obj["id"])) is None
    row, written = mirror.apply_payment_intent(ctx.session, obj, t)
    # A dispute mirrored before its payment flags the payment when it appears.
    if new and _has_dispute(ctx.session, row.stripe_id):
        _mark_disputed(ctx.session, row.stripe_id)
    return row, written


def _apply_refund(ctx: Context, obj: Json, t: int) -> tuple[StripeMirrorMixin, bool]:
    return mirror.apply_refund(ctx.session, obj, t)


def _apply_dispute(ctx: Context, obj: Json, t: int) -> tuple[StripeMirrorMixin, bool]:
    row, written = mirror.apply_dispute(ctx.session, obj, t)
    intent_id = mirror.ref(obj.get("payment_intent"))
    disputed = ctx.session.info.get(DISPUTED_CACHE)
    if disputed is not None and intent_id is not None:
        disputed.add(intent_id)
    _mark_disputed(ctx.session, intent_id)
    return row, written


def _apply_subscription(ctx: Context, obj: Json, t: int) -> tuple[StripeMirrorMixin, bool]:
    return mirror.apply_subscription(ctx.session, obj, t, ctx.tier_of)


def _apply_invoice(ctx: Context, obj: Json, t: int) -> tuple[StripeMirrorMixin, bool]:
    return mirror.apply_invoice(ctx.session, obj, t)


@dataclass(frozen=True)
class ObjectType:
    """A mirrored Stripe object type: its table and how an object of it is written."""

    model: type[StripeMirrorMixin]
    apply: ApplyFn


# The one registry of mirrored object types, by Stripe's ``object`` name: the
# handlers apply through it and the worker preloads a batch's rows with it.
OBJECT_TYPES: dict[str, ObjectType] = {
    "customer": ObjectType(Customer, _apply_customer),
    "product": ObjectType(Product, _apply_product),
    "price": ObjectType(Price, _apply_price),
    "payment_intent": ObjectType(Payment, _apply_payment_intent),
    "refund": ObjectType(Refund, _apply_refund),
    "dispute": ObjectType(Dispute, _apply_dispute),
    "subscription": ObjectType(Subscription, _apply_subscription),
    "invoice": ObjectType(Invoice, _apply_invoice),
}


DISPUTED_CACHE = "paydesk.disputed_payments"


def prefetch_disputed(session: Session, intent_ids: set[str]) -> None:
    """Cache which of ``intent_ids`` have a mirrored dispute (one query for a batch).

    The worker calls this before a batch; the dispute handler keeps the cache current
    for disputes applied within the batch. The caller drops it with the batch.
    """
    found = (
        session.scalars(
            select(Dispute.payment_intent_id).where(Dispute.payment_intent_id.in_(intent_ids))
        )
        if intent_ids
        else ()
    )
    session.info[DISPUTED_CACHE] = {str(intent_id) for intent_id in found}


def _has_dispute(session: Session, intent_id: str) -> bool:
    cached: set[str] | None = session.info.get(DISPUTED_CACHE)
    if cached is not None:
        return intent_id in cached
    disputed = select(Dispute.id).where(Dispute.payment_intent_id == intent_id)
    return session.scalars(disputed.limit(1)).first() is not None


def _mark_disputed(session: Session, intent_id: str | None) -> None:
    if intent_id is None:
        return
    payment = mirror.find(session, Payment, intent_id)
    if payment is not None and not payment.disputed:
        payment.disputed = True
        mirror.flush(session)


def _cached_or_loaded(ctx: Context, model: type[Any], object_id: str) -> Any:
    cache = mirror.row_cache(ctx.session)
    if cache is not None and (model, object_id) in cache:
        return cache[(model, object_id)]
    return ctx.session.scalars(select(model).where(model.stripe_id == object_id)).one_or_none()


def _tied_with_another_event(ctx: Context, object_id: str, created: int) -> bool:
    # Events applied earlier in this batch are not marked processed in the table yet.
    if any(pk != ctx.event_pk for pk in ctx.applied_in_batch.get((object_id, created), ())):
        return True
    mirror.flush(ctx.session)
    query = select(StripeEvent.id).where(
        StripeEvent.object_id == object_id,
        StripeEvent.created == created,
        StripeEvent.status == "processed",
    )
    if ctx.event_pk is not None:
        query = query.where(StripeEvent.id != ctx.event_pk)
    return ctx.session.scalars(query.limit(1)).first() is not None


def apply_stateful(ctx: Context, object_type: str, obj: Json, created: int) -> str:
    """Apply ``obj`` as of ``created``, or re-fetch it when the event is not the freshest.

    Returns the outcome: ``applied``, ``refetched``, ``stale`` (older than the
    mirror and nothing to re-fetch with) or ``gone`` (Stripe no longer has it).
    """
    apply, model = OBJECT_TYPES[object_type].apply, OBJECT_TYPES[object_type].model
    object_id = str(obj["id"])
    row = _cached_or_loaded(ctx, model, object_id)
    if row is None or row.source_time < created:
        apply(ctx, obj, created)
        return "applied"
    # Not newer than the mirror. A row from the same second was written by another
    # event, by this one before (a replay) or by a read from Stripe in that second
    # (the portal confirms a payment that way); only Stripe knows which state is last.
    if ctx.fetcher is not None and ctx.fetcher.can_fetch(object_type):
        fresh = ctx.fetcher.fetch(object_type, object_id)
        if fresh is None:
            return "gone"
        apply(ctx, fresh, max(int(time.time()), row.source_time))
        return "refetched"
    if row.source_time > created:
        return "stale"
    # Without Stripe, a tie is broken by how far the status has progressed: a replay
    # (same status) applies again; an earlier status never overwrites a later one.
    rank, current = (
        _rank(object_type, obj.get("status")),
        _rank(object_type, getattr(row, "status", None)),
    )
    if rank > current or (
        rank == current and not _tied_with_another_event(ctx, object_id, created)
    ):
        apply(ctx, obj, created)
        return "applied"
    return "stale"


def _charge(ctx: Context, event: Json) -> str:
    charge = event["data"]["object"]
    intent_id = mirror.ref(charge.get("payment_intent"))
    if intent_id is None:
        return "no payment intent"
    if mirror.apply_charge_details(ctx.session, charge) is not None:
        return "applied"
    # The payment is not mirrored yet (its events are late): fetch it, or wait.
    if ctx.fetcher is not None and ctx.fetcher.can_fetch("payment_intent"):
        fresh = ctx.fetcher.fetch("payment_intent", intent_id)
        if fresh is not None:
            apply_stateful(ctx, "payment_intent", fresh, int(time.time()))
            mirror.apply_charge_details(ctx.session, charge)
            return "refetched"
    raise Deferred(f"payment {intent_id} is not mirrored yet")


def _stateful(object_type: str, *, deleted: bool = False) -> Callable[[Context, Json], str]:
    def handle(ctx: Context, event: Json) -> str:
        obj = event["data"]["object"]
        if obj.get("object") not in (object_type, None):
            return "ignored: unexpected object"
        if deleted:
            obj = {**obj, "deleted": True}
        return apply_stateful(ctx, object_type, obj, int(event["created"]))

    return handle


_EXACT: dict[str, Callable[[Context, Json], str]] = {
    "customer.created": _stateful("customer"),
    "customer.updated": _stateful("customer"),
    "customer.deleted": _stateful("customer", deleted=True),
    "product.created": _stateful("product"),
    "product.updated": _stateful("product"),
    "product.deleted": _stateful("product", deleted=True),
    "price.created": _stateful("price"),
    "price.updated": _stateful("price"),
    "price.deleted": _stateful("price", deleted=True),
    "charge.succeeded": _charge,
    "charge.failed": _charge,
    "charge.captured": _charge,
    "charge.updated": _charge,
    "charge.refunded": _charge,
    "charge.refund.updated": _stateful("refund"),
    "charge.dispute.created": _stateful("dispute"),
    "charge.dispute.updated": _stateful("dispute"),
    "charge.dispute.closed": _stateful("dispute"),
    "charge.dispute.funds_withdrawn": _stateful("dispute"),
    "charge.dispute.funds_reinstated": _stateful("dispute"),
    "invoice.paid": _stateful("invoice"),
    "invoice.payment_failed": _stateful("invoice"),
    "invoice.payment_succeeded": _stateful("invoice"),
    "invoice.created": _stateful("invoice"),
    "invoice.finalized": _stateful("invoice"),
    "invoice.updated": _stateful("invoice"),
    "invoice.voided": _stateful("invoice"),
    "invoice.marked_uncollectible": _stateful("invoice"),
    "invoice.payment_action_required": _stateful("invoice"),
}

# Families handled whole: every event of these prefixes carries that object.
_PREFIXES: tuple[tuple[str, Callable[[Context, Json], str]], ...] = (
    ("payment_intent.", _stateful("payment_intent")),
    ("customer.subscription.", _stateful("subscription")),
    ("refund.", _stateful("refund")),
)


def handler_for(event_type: str) -> Callable[[Context, Json], str] | None:
    """The handler of ``event_type``; None for types Paydesk ignores."""
    found = _EXACT.get(event_type)
    if found is not None:
        return found
    for prefix, handler in _PREFIXES:
        if event_type.startswith(prefix):
            return handler
    return None
