"""Subscription state changes shared by the API handlers and test-clock advances.

Every function takes the moment it acts at (``now``): the customer's test-clock time
for clock customers, real time otherwise. Status changes emit
``customer.subscription.updated`` with ``previous_attributes``; ends emit
``customer.subscription.deleted``.
"""

from __future__ import annotations

from paydesk_sandbox.billing import discounts, invoicing, periods, proration, shapes
from paydesk_sandbox.billing.common import changed, snapshot
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.billing.subscription_status import end_subscription, subscription_of
from paydesk_sandbox.state import Json, SandboxState

INCOMPLETE_EXPIRY = 23 * 3_600  # an unpaid first invoice expires the subscription after 23 h
TRIAL_WILL_END_NOTICE = 3 * 86_400  # Stripe warns three days before a trial ends

ACTIVE_LIKE = ("active", "past_due", "trialing", "unpaid")
ENDED = ("canceled", "incomplete_expired")


def get_subscription(state: SandboxState, subscription_id: str, param: str = "id") -> Json:
    """The subscription or a 404 ``No such subscription``."""
    return state.get("subscription", subscription_id, label="subscription", param=param)


def billing_interval(subscription: Json) -> tuple[str, int]:
    """``(interval, interval_count)`` shared by the subscription's items."""
    rec = subscription["items"]["data"][0]["price"]["recurring"]
    return rec["interval"], rec["interval_count"]


def current_period(subscription: Json) -> tuple[int, int]:
    """The items' current period (all items of a classic subscription share it)."""
    item = subscription["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


def set_period(subscription: Json, period: tuple[int, int]) -> None:
    """Move every item to ``period``."""
    for item in subscription["items"]["data"]:
        item["current_period_start"], item["current_period_end"] = period


def anchor_at(
    state: SandboxState, subscription: Json, anchor: int, first_end: int | None = None
) -> None:
    """Restart the billing cycle at ``anchor`` (creation, resume, interval change).

    ``first_end`` overrides the first period's end (a trial ends it early).
    """
    interval, count = billing_interval(subscription)
    end = first_end if first_end is not None else periods.boundary(anchor, interval, count, 1)
    subscription["billing_cycle_anchor"] = end if first_end is not None else anchor
    data = state.private_of(subscription["id"])
    data["cycle"] = 0 if first_end is None else -1
    set_period(subscription, (anchor, end))


def next_period(state: SandboxState, subscription: Json) -> tuple[int, int]:
    """The period that follows the current one, counted from the billing-cycle anchor."""
    interval, count = billing_interval(subscription)
    data = state.private_of(subscription["id"])
    cycle = int(data.get("cycle", 0)) + 1
    start = current_period(subscription)[1]
    end = periods.boundary(subscription["billing_cycle_anchor"], interval, count, cycle + 1)
    return start, end


def set_status(state: SandboxState, subscription: Json, status: str) -> None:
    """Change status and emit ``customer.subscription.updated``."""
    if subscription["status"] == status:
        return
    before = snapshot(subscription)
    subscription["status"] = status
    emit(state, "customer.subscription.updated", subscription, changed(before, subscription))


# ---- invoices of a subscription ---------------------------------------------------
def invoice_now(
    state: SandboxState, subscription: Json, now: int, *, billing_reason: str, with_cycle: bool
) -> Json:
    """Create, announce and finalize an invoice for the subscription at ``now``.

    ``with_cycle`` adds the items' current period; pending prorations of the
    subscription always go in. Paying is left to the caller.
    """
    invoice = invoicing.create_draft(
        state,
        customer_id=subscription["customer"],
        currency=subscription["currency"],
        billing_reason=billing_reason,
        # Stripe's first and update invoices cover the instant they were created at.
        period=(now, now),
        now=now,
        subscription=subscription,
    )
    if with_cycle:
        invoicing.add_subscription_lines(state, invoice, subscription)
    invoicing.add_pending_items(state, invoice, subscription_id=subscription["id"])
    subscription["latest_invoice"] = invoice["id"]
    invoicing.announce(state, invoice)
    invoicing.finalize(state, invoice, now)
    return invoice


def collect(state: SandboxState, subscription: Json, invoice: Json, now: int) -> bool:
    """Charge a finalized subscription invoice off-session; True if it is paid."""
    if invoice["status"] == "paid":
        return True
    if invoice["status"] != "open" or subscription["collection_method"] != "charge_automatically":
        return False
    if invoicing.payment_method_for(state, invoice, None) is None:
        # Nothing to charge: Stripe leaves the invoice open and records the failure.
        before = snapshot(invoice)
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        invoicing.record_failure(state, invoice, now, before)
        return False
    return invoicing.attempt_payment(state, invoice, now) is None


# ---- renewals -------------------------------------------------------------------
def renew(state: SandboxState, subscription: Json, now: int) -> Json:
    """Roll the items into the next period and draft the cycle invoice.

    The draft is finalized and charged about an hour later (``automatically_finalizes_at``),
    as in Stripe; unpaid subscriptions keep drafting invoices that are never charged.
    """
    before = snapshot(subscription)
    old_start, old_end = current_period(subscription)
    new_period = next_period(state, subscription)
    data = state.private_of(subscription["id"])
    data["cycle"] = int(data.get("cycle", 0)) + 1
    set_period(subscription, new_period)
    invoice = invoicing.create_draft(
        state,
        customer_id=subscription["customer"],
        currency=subscription["currency"],
        billing_reason="subscription_cycle",
        period=(old_start, old_end),
        now=now,
        subscription=subscription,
    )
    invoicing.add_subscription_lines(state, invoice, subscription)
    invoicing.add_pending_items(state, invoice, subscription_id=subscription["id"])
    subscription["latest_invoice"] = invoice["id"]
    pause = subscription["pause_collection"]
    if pause is not None and pause["resumes_at"] is not None and pause["resumes_at"] <= now:
        subscription["pause_collection"] = pause = None
    if subscription["status"] == "unpaid" or pause is not None:
        invoice["auto_advance"] = False
    else:
        invoice["automatically_finalizes_at"] = now + invoicing.FINALIZE_DELAY
    emit(state, "customer.subscription.updated", subscription, changed(before, subscription))
    invoicing.announce(state, invoice)
    if pause is not None and pause["behavior"] != "keep_as_draft":
        # Paused collection: the invoice is closed right away instead of charged.
        invoicing.finalize(state, invoice, now)
        if invoice["status"] == "open" and pause["behavior"] == "void":
            invoicing.void(state, invoice, now)
        elif invoice["status"] == "open":
            invoicing.mark_uncollectible(state, invoice, now)
    return invoice


def finalize_and_collect(state: SandboxState, invoice: Json, now: int) -> None:
    """The scheduled step after a renewal draft: finalize, then charge it."""
    invoicing.finalize(state, invoice, now)
    subscription = subscription_of(state, invoice)
    if subscription is not None:
        collect(state, subscription, invoice, now)


def end_trial(state: SandboxState, subscription: Json, now: int) -> None:
    """The trial is over: pause/cancel without a payment method, else bill the first period."""
    behavior = subscription["trial_settings"]["end_behavior"]["missing_payment_method"]
    has_pm = _has_payment_method(state, subscription)
    if not has_pm and behavior == "pause":
        before = snapshot(subscription)
        subscription["status"] = "paused"
        subscription["trial_end"] = min(subscription["trial_end"] or now, now)
        emit(state, "customer.subscription.paused", subscription, changed(before, subscription))
        emit(state, "customer.subscription.updated", subscription, changed(before, subscription))
        return
    if not has_pm and behavior == "cancel":
        cancel(state, subscription, now, reason="cancellation_requested")
        return
    before = snapshot(subscription)
    subscription["trial_end"] = min(subscription["trial_end"] or now, now)
    anchor_at(state, subscription, now)
    subscription["status"] = "active"
    emit(state, "customer.subscription.updated", subscription, changed(before, subscription))
    invoice = invoice_now(
        state, subscription, now, billing_reason="subscription_cycle", with_cycle=True
    )
    if not collect(state, subscription, invoice, now) and invoice["status"] == "open":
        set_status(state, subscription, "past_due")


def _has_payment_method(state: SandboxState, subscription: Json) -> bool:
    if subscription["default_payment_method"]:
        return True
    customer = state.store("customer").get(subscription["customer"]) or {}
    return bool((customer.get("invoice_settings") or {}).get("default_payment_method"))


def maybe_warn_trial_end(state: SandboxState, subscription: Json, now: int) -> None:
    """Emit ``customer.subscription.trial_will_end`` once, three days before the trial ends."""
    data = state.private_of(subscription["id"])
    trial_end = subscription["trial_end"]
    if subscription["status"] != "trialing" or trial_end is None or data.get("trial_warned"):
        return
    if trial_end - now <= TRIAL_WILL_END_NOTICE:
        data["trial_warned"] = True
        emit(state, "customer.subscription.trial_will_end", subscription)


# ---- ends -----------------------------------------------------------------------
def cancel(
    state: SandboxState,
    subscription: Json,
    now: int,
    *,
    reason: str,
    invoice_remaining: bool = False,
    prorate: bool = False,
) -> None:
    """End the subscription now: ``canceled`` and ``customer.subscription.deleted``.

    ``prorate`` credits the unused time; ``invoice_remaining`` bills pending items at once.
    Open invoices stay open but are no longer retried.
    """
    if prorate and subscription["status"] in ACTIVE_LIKE:
        start, end = current_period(subscription)
        items = subscription["items"]["data"]
        offs = discounts.period_discounts(state, subscription, items, now)
        for item in items:
            full = item["price"]["unit_amount"] * item["quantity"]
            share = proration.discounted_share(full, offs.get(item["id"], []), start, end, now)
            if proration_amount(subscription, share):
                add_proration_item(
                    state, subscription, item, 0, now, end, "Unused time",
                    share=share, credit=True,
                )  # fmt: skip
    if invoice_remaining:
        pending = [
            ii
            for ii in state.store("invoiceitem").values()
            if ii["invoice"] is None
            and ii["parent"]
            and ii["parent"]["subscription_details"]["subscription"] == subscription["id"]
        ]
        if pending:
            invoice = invoice_now(
                state, subscription, now, billing_reason="subscription_update", with_cycle=False
            )
            collect(state, subscription, invoice, now)
    end_subscription(state, subscription, now, reason=reason)


def expire_incomplete(state: SandboxState, subscription: Json, now: int) -> None:
    """23 h without a paid first invoice: void it and end as ``incomplete_expired``."""
    latest = subscription["latest_invoice"]
    invoice = state.store("invoice").get(latest) if latest else None
    if invoice is not None and invoice["status"] == "open":
        invoicing.void(state, invoice, now)
    before = snapshot(subscription)
    subscription["status"] = "incomplete_expired"
    subscription["ended_at"] = now
    emit(state, "customer.subscription.deleted", subscription, changed(before, subscription))


# ---- pending updates (payment_behavior=pending_if_incomplete) --------------------
def expire_pending_update(state: SandboxState, subscription: Json, now: int) -> None:
    """23 h without payment: drop the pending update and void its invoice."""
    invoice_id = state.private_of(subscription["id"]).pop("pending_invoice", None)
    invoice = state.store("invoice").get(invoice_id) if invoice_id else None
    if invoice is not None and invoice["status"] == "open":
        invoicing.void(state, invoice, now)
    before = snapshot(subscription)
    subscription["pending_update"] = None
    previous = changed(before, subscription)
    emit(state, "customer.subscription.pending_update_expired", subscription, previous)
    emit(state, "customer.subscription.updated", subscription, previous)


# ---- prorations -----------------------------------------------------------------
def add_proration_item(
    state: SandboxState,
    subscription: Json,
    item: Json,
    amount: int,
    now: int,
    period_end: int,
    label: str,
    price: Json | None = None,
    *,
    share: proration.DiscountedShare | None = None,
    credit: bool = False,
) -> Json:
    """A pending proration invoice item (``invoiceitem.created``).

    With ``share`` (a discounted item) ``amount`` is ignored: it is the net share
    under Stripe's default ``proration_discounts=included``, the gross one under
    ``itemized`` (the line then shows the discount amounts), and the item lists the
    discounts either way; flexible billing mode records them in ``proration_details``.
    """
    price = price or item["price"]
    quantity = item["quantity"]
    description = (
        f"{label} on {quantity} × {invoicing.price_label(state, price).split(' (at')[0]} "
        f"after {invoicing.day_label(now)}"
    )
    sign = -1 if credit else 1
    if share is not None:
        amount = sign * proration_amount(subscription, share)
    customer = state.store("customer").get(subscription["customer"]) or {}
    obj = shapes.invoice_item(
        id=state.new_id("ii"),
        created=now,
        customer_id=subscription["customer"],
        amount=amount,
        currency=subscription["currency"],
        description=description,
        period=(now, period_end),
        proration=True,
        subscription_id=subscription["id"],
        price_id=price["id"],
        product_id=price["product"],
        quantity=quantity,
        metadata={},
        test_clock=customer.get("test_clock"),
    )
    if share is not None:
        obj["discounts"] = [d for d, _ in share.discounts]
        obj["net_amount"] = sign * share.net
        parts = [{"amount": sign * a, "discount": d} for d, a in share.discounts]
        if subscription["billing_mode"]["type"] == "flexible":
            obj["proration_details"] = {"credited_items": None, "discount_amounts": parts}
        if itemized(subscription):
            state.private_of(obj["id"])["itemized_discounts"] = parts
    state.add(obj)
    emit(state, "invoiceitem.created", obj)
    return obj


def itemized(subscription: Json) -> bool:
    """Whether the subscription shows proration discounts itemized (flexible mode)."""
    flexible = subscription["billing_mode"].get("flexible") or {}
    return bool(flexible.get("proration_discounts") == "itemized")


def proration_amount(subscription: Json, share: proration.DiscountedShare) -> int:
    """What a proration item of ``share`` will carry (0: none is created)."""
    return share.gross if itemized(subscription) else share.net
