"""``POST /v1/subscriptions/{id}`` and the cancel, pause and resume actions.

Price and quantity changes prorate by time (``create_prorations`` waits for the next
invoice, ``always_invoice`` bills at once, ``none`` skips); a new billing interval
restarts the cycle. A failed ``error_if_incomplete`` update is undone completely.
"""

from __future__ import annotations

from paydesk_sandbox.billing import discounts, invoicing, lifecycle, payments, proration, shapes
from paydesk_sandbox.billing import subscription_params as sp
from paydesk_sandbox.billing.common import changed, snapshot
from paydesk_sandbox.billing.outbox import emit, held
from paydesk_sandbox.errors import invalid_request, parameter_missing
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState, clone

router = Router()


# ---- update ---------------------------------------------------------------------
@router.post("/v1/subscriptions/{id}", params=sp.UPDATE_PARAMS)
def update(ctx: Ctx) -> Json:
    return update_subscription(ctx)


def update_subscription(ctx: Ctx) -> Json:
    """``POST /v1/subscriptions/{id}`` (also reached through the item endpoints)."""
    state = ctx.state
    p = ctx.params
    subscription = lifecycle.get_subscription(state, ctx.path["id"])
    if subscription["status"] in lifecycle.ENDED:
        allowed = {"metadata", "cancellation_details", "expand"}
        if set(p.data) - allowed:
            raise invalid_request(
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
    now = state.now_for_customer(subscription["customer"])
    behavior = p.enum("payment_behavior", (*sp.BEHAVIORS, "pending_if_incomplete"))
    behavior = behavior or "allow_incomplete"
    proration_behavior = p.enum("proration_behavior", sp.PRORATIONS) or "create_prorations"
    at = p.integer("proration_date") or now
    if behavior == "pending_if_incomplete":
        extra = set(p.data) - PENDING_ALLOWED
        if extra:
            raise invalid_request(
                "When payment_behavior=pending_if_incomplete you can only update items, "
                f"proration settings and trial_end; also got: {', '.join(sorted(extra))}.",
                param=sorted(extra)[0],
            )
    specs = discounts.parse(
        state,
        p,
        customer_id=subscription["customer"],
        currency=subscription["currency"],
        amount_due=None,
        now=now,
        reusable=subscription["discounts"],
    )
    before = snapshot(subscription)
    reported: Json | None = None
    with held(state, enabled=behavior == "error_if_incomplete"):
        try:
            reported = _update(ctx, subscription, now, at, behavior, proration_behavior)
        except _PaymentPending:
            _keep_pending(state, subscription, before, now)
        except BaseException:
            _restore(state, subscription, before)
            raise
    if specs is not None:
        _replace_discounts(state, subscription, specs, now)
    diff = changed(reported or before, subscription)
    if diff:
        emit(state, "customer.subscription.updated", subscription, diff)
    return subscription


def _replace_discounts(
    state: SandboxState, subscription: Json, specs: list[discounts.Spec], now: int
) -> None:
    """``discounts`` given on update replace the subscription's: the old ones not given
    again end (``customer.discount.deleted``), the new ones start with the next invoice."""
    kept = {reused for _, _, reused in specs}
    for discount_id in subscription["discounts"]:
        discount = state.store("discount").get(discount_id)
        if discount is not None and discount_id not in kept:
            emit(state, "customer.discount.deleted", discount)
    subscription["discounts"] = [
        discounts.create(
            state,
            spec,
            customer_id=subscription["customer"],
            now=now,
            subscription_id=subscription["id"],
        )["id"]
        for spec in specs
    ]


PENDING_ALLOWED = frozenset(
    {"items", "proration_behavior", "proration_date", "payment_behavior", "expand",
     "off_session", "trial_end", "add_invoice_items"}
)  # fmt: skip
PENDING_LIFETIME = 23 * 3_600  # Stripe lets a pending update wait 23 hours for payment


class _PaymentPending(Exception):
    """The update's invoice was not paid and ``pending_if_incomplete`` was asked for."""


def _keep_pending(state: SandboxState, subscription: Json, before: Json, now: int) -> None:
    """pending_if_incomplete: keep the subscription as it was, remember the change in
    ``pending_update`` and apply it once the update's invoice is paid."""
    data = state.private_of(subscription["id"])
    wanted_items = clone(subscription["items"]["data"])
    invoice_id = data.pop("new_invoice")
    data.pop("new_items", None)
    subscription.clear()
    subscription.update(before)
    subscription["latest_invoice"] = invoice_id
    subscription["pending_update"] = {
        "billing_cycle_anchor": None,
        "discount": None,
        "discounts": None,
        "expires_at": now + PENDING_LIFETIME,
        "metadata": None,
        "subscription_items": wanted_items,
        "trial_end": None,
        "trial_from_plan": None,
    }
    data["pending_invoice"] = invoice_id


def _restore(state: SandboxState, subscription: Json, before: Json) -> None:
    """Undo a failed update (error_if_incomplete): the subscription keeps its old state
    and the prorations and invoice the update created disappear (their events were held)."""
    subscription.clear()
    subscription.update(before)
    data = state.private_of(subscription["id"])
    for item_id in data.pop("new_items", []):
        state.store("invoiceitem").pop(item_id, None)
    invoice_id = data.pop("new_invoice", None)
    if invoice_id is not None:
        state.store("invoice").pop(invoice_id, None)
        for record in list(state.store("invoice_payment").values()):
            if record["invoice"] == invoice_id:
                state.store("invoice_payment").pop(record["id"], None)


def _update(
    ctx: Ctx, subscription: Json, now: int, at: int, behavior: str, proration_behavior: str
) -> Json | None:
    """Apply the update; returns the state already reported by an event, if any."""
    reported: Json | None = None
    state = ctx.state
    p = ctx.params
    data = state.private_of(subscription["id"])
    data["new_items"] = []
    if "default_payment_method" in p:
        subscription["default_payment_method"] = sp.attached_payment_method(
            state, subscription["customer"], p.string("default_payment_method")
        )
    if "description" in p:
        subscription["description"] = p.string("description")
    subscription["metadata"] = p.metadata(subscription["metadata"])
    details = p.sub("cancellation_details")
    if details is not None:
        for key in ("comment", "feedback"):
            if key in details:
                subscription["cancellation_details"][key] = details.string(key)
    sp.apply_trial_settings(subscription, p)
    sp.apply_payment_settings(subscription, p)
    if "collection_method" in p:
        subscription["collection_method"] = p.enum(
            "collection_method", ("charge_automatically", "send_invoice")
        )
    if "days_until_due" in p:
        subscription["days_until_due"] = p.integer("days_until_due", minimum=0)
    if "pause_collection" in p:
        pause = p.sub("pause_collection")
        subscription["pause_collection"] = (
            None
            if pause is None
            else {
                "behavior": pause.enum(
                    "behavior", ("keep_as_draft", "mark_uncollectible", "void"), required=True
                ),
                "resumes_at": pause.integer("resumes_at"),
            }
        )
    if "cancel_at_period_end" in p:
        flag = bool(p.boolean("cancel_at_period_end"))
        subscription["cancel_at_period_end"] = flag
        subscription["cancel_at"] = lifecycle.current_period(subscription)[1] if flag else None
        subscription["canceled_at"] = now if flag else None
    if "cancel_at" in p:
        cancel_at = p.integer("cancel_at")
        subscription["cancel_at"] = cancel_at
        subscription["cancel_at_period_end"] = False
        subscription["canceled_at"] = now if cancel_at is not None else None

    invoice_needed = _change_items(ctx, subscription, now, at, proration_behavior)
    sp.add_invoice_items(ctx, subscription, now)

    trial_end = sp.timestamp_or_now(p, "trial_end", now) if "trial_end" in p else None
    if trial_end is not None and subscription["status"] == "trialing":
        if trial_end <= now:
            lifecycle.end_trial(state, subscription, now)
            reported = snapshot(subscription)
        else:
            subscription["trial_end"] = trial_end
            lifecycle.set_period(
                subscription, (lifecycle.current_period(subscription)[0], trial_end)
            )
            subscription["billing_cycle_anchor"] = trial_end
    if invoice_needed and subscription["status"] in ("active", "past_due", "trialing"):
        invoice = lifecycle.invoice_now(
            state,
            subscription,
            now,
            billing_reason="subscription_update",
            with_cycle=invoice_needed == "cycle",
        )
        data["new_invoice"] = invoice["id"]
        _pay_update_invoice(ctx, subscription, invoice, now, behavior)
    data.pop("new_items", None)
    data.pop("new_invoice", None)
    return reported


def _pay_update_invoice(
    ctx: Ctx, subscription: Json, invoice: Json, now: int, behavior: str
) -> None:
    state = ctx.state
    if invoice["status"] != "open" or subscription["collection_method"] != "charge_automatically":
        return
    if behavior == "default_incomplete":
        invoicing.open_payment(
            state, invoice, now, invoicing.payment_method_for(state, invoice, None)
        )
        return
    pm = invoicing.payment_method_for(state, invoice, None)
    if pm is None and behavior == "error_if_incomplete":
        raise invalid_request(
            "This customer has no attached payment source or default payment method. Please "
            "consider adding a default payment method.",
        )
    off_session = bool(ctx.params.boolean("off_session", False))
    pending = behavior == "pending_if_incomplete"
    data = state.private_of(subscription["id"])
    if pending:
        data["pending_attempt"] = True  # record_failure: no past_due, no retries
    try:
        error = (
            invoicing.attempt_payment(
                state, invoice, now, payment_method=pm, off_session=off_session
            )
            if pm
            else None
        )
    finally:
        data.pop("pending_attempt", None)
    if pending and (error is not None or pm is None):
        raise _PaymentPending
    if error is not None and behavior == "error_if_incomplete":
        intent = invoicing.current_intent(state, invoice)
        if intent is not None and intent["status"] == "requires_payment_method":
            payments.cancel_intent(state, intent["id"], reason="failed_invoice")
        raise error
    if error is not None or pm is None:
        subscription["status"] = "past_due"


def _change_items(
    ctx: Ctx, subscription: Json, now: int, at: int, proration_behavior: str
) -> str | None:
    """Apply ``items[]``; returns "cycle"/"prorations" when an invoice is due now."""
    specs = sp.item_specs(ctx)
    if not specs:
        return None
    state = ctx.state
    start, end = lifecycle.current_period(subscription)
    old_interval = lifecycle.billing_interval(subscription)
    # What each item got off a full period before the change (credits use it).
    offs = discounts.period_discounts(state, subscription, subscription["items"]["data"], at)
    existing = {item["id"]: item for item in subscription["items"]["data"]}
    kept: list[Json] = list(subscription["items"]["data"])
    changes: list[tuple[Json | None, Json | None]] = []  # (old item snapshot, new item)
    for spec in specs:
        item_id = spec.string("id")
        if item_id is not None and item_id not in existing:
            raise invalid_request(f"Invalid subscription_item id: {item_id}", param=spec.name("id"))
        item = existing.get(item_id) if item_id else None
        if spec.boolean("deleted"):
            if item is None:
                raise parameter_missing(spec.name("id"))
            kept.remove(item)
            changes.append((snapshot(item), None))
            continue
        if item is None:
            added = sp.new_item(ctx, subscription["id"], sp.recurring_price(ctx, spec), spec, now)
            added["current_period_start"], added["current_period_end"] = start, end
            kept.append(added)
            changes.append((None, added))
            continue
        old = snapshot(item)
        if spec.string("price") is not None or spec.sub("price_data") is not None:
            price = sp.recurring_price(ctx, spec)
            item["price"] = price
            item["plan"] = shapes.plan(price)
        if "quantity" in spec:
            item["quantity"] = spec.integer("quantity", minimum=0) or 0
        item["metadata"] = spec.metadata(item["metadata"])
        if old["price"]["id"] != item["price"]["id"] or old["quantity"] != item["quantity"]:
            changes.append((old, item))
    if not kept:
        raise invalid_request("A subscription must have at least one item.", param="items")
    sp.check_compatible(kept, "items")
    subscription["items"]["data"] = kept
    if not changes:
        return None
    # ... and after it (debits use it).
    new_offs = discounts.period_discounts(state, subscription, kept, at)
    new_interval = lifecycle.billing_interval(subscription)
    prorate = proration_behavior != "none" and subscription["status"] != "trialing"
    if new_interval != old_interval:
        # A new billing interval restarts the cycle now and bills the new period at once,
        # crediting the unused time of the old one.
        if prorate:
            for previous, _current in changes:
                if previous is not None:
                    _prorate(
                        state, subscription, (previous, None), (offs, new_offs), (start, end), at
                    )
        lifecycle.anchor_at(state, subscription, now)
        return "cycle"
    if prorate:
        for previous, current in changes:
            _prorate(state, subscription, (previous, current), (offs, new_offs), (start, end), at)
    if proration_behavior == "always_invoice" and prorate:
        return "prorations"
    return None


def _prorate(
    state: SandboxState,
    subscription: Json,
    change: tuple[Json | None, Json | None],
    offs: tuple[dict[str, list[tuple[str, int]]], dict[str, list[tuple[str, int]]]],
    period: tuple[int, int],
    at: int,
) -> None:
    """The credit and debit invoice items of one item's change. Each side prorates the
    full period's charge less what the subscription's discounts take off it (see
    :func:`lifecycle.add_proration_item` for how the discounts show)."""
    old, new = change
    data = state.private_of(subscription["id"])
    for who, side_offs, label, credit in (
        (old, offs[0], "Unused time", True),
        (new, offs[1], "Remaining time", False),
    ):
        if who is None:
            continue
        full = who["price"]["unit_amount"] * who["quantity"]
        share = proration.discounted_share(full, side_offs.get(who["id"], []), *period, at)
        if lifecycle.proration_amount(subscription, share):
            ii = lifecycle.add_proration_item(
                state, subscription, who, 0, at, period[1], label, who["price"],
                share=share, credit=credit,
            )  # fmt: skip
            data["new_items"].append(ii["id"])


# ---- cancel / pause / resume ----------------------------------------------------
@router.delete("/v1/subscriptions/{id}", params=("cancellation_details", "invoice_now", "prorate"))
def cancel(ctx: Ctx) -> Json:
    state = ctx.state
    subscription = lifecycle.get_subscription(state, ctx.path["id"])
    if subscription["status"] in lifecycle.ENDED:
        raise invalid_request(
            f"This subscription has already been canceled: {subscription['id']}.",
            code="resource_missing",
        )
    details = ctx.params.sub("cancellation_details")
    if details is not None:
        for key in ("comment", "feedback"):
            if key in details:
                subscription["cancellation_details"][key] = details.string(key)
    now = state.now_for_customer(subscription["customer"])
    lifecycle.cancel(
        state,
        subscription,
        now,
        reason="cancellation_requested",
        invoice_remaining=bool(ctx.params.boolean("invoice_now")),
        prorate=bool(ctx.params.boolean("prorate")),
    )
    return subscription


@router.post("/v1/subscriptions/{id}/pause", params=("type", "bill_for", "invoicing_behavior"))
def pause(ctx: Ctx) -> Json:
    state = ctx.state
    subscription = lifecycle.get_subscription(state, ctx.path["id"])
    if subscription["status"] not in ("active", "trialing", "past_due"):
        raise invalid_request(
            f"Only active or trialing subscriptions can be paused; this one is "
            f"{subscription['status']}.",
        )
    before = snapshot(subscription)
    subscription["status"] = "paused"
    emit(state, "customer.subscription.paused", subscription, changed(before, subscription))
    emit(state, "customer.subscription.updated", subscription, changed(before, subscription))
    return subscription


@router.post(
    "/v1/subscriptions/{id}/resume",
    params=("billing_cycle_anchor", "payment_behavior", "proration_behavior", "proration_date"),
)
def resume(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    subscription = lifecycle.get_subscription(state, ctx.path["id"])
    if subscription["status"] != "paused":
        raise invalid_request(
            f"The subscription is {subscription['status']}; only paused subscriptions can be "
            "resumed."
        )
    anchor_choice = p.enum("billing_cycle_anchor", ("now", "unchanged")) or "now"
    behavior = p.enum("payment_behavior", ("allow_incomplete", "pending_if_incomplete"))
    p.enum("proration_behavior", sp.PRORATIONS)
    now = state.now_for_customer(subscription["customer"])
    before = snapshot(subscription)
    subscription["status"] = "active"
    if anchor_choice == "now" or lifecycle.current_period(subscription)[1] <= now:
        lifecycle.anchor_at(state, subscription, now)
        invoice = lifecycle.invoice_now(
            state, subscription, now, billing_reason="subscription_update", with_cycle=True
        )
        paid = lifecycle.collect(state, subscription, invoice, now)
        if not paid and invoice["status"] == "open" and behavior != "pending_if_incomplete":
            subscription["status"] = "past_due"
    emit(state, "customer.subscription.resumed", subscription, changed(before, subscription))
    emit(state, "customer.subscription.updated", subscription, changed(before, subscription))
    return subscription


@router.on("customer.deleted")
def _customer_deleted(state: SandboxState, event: Json) -> None:
    """Deleting a customer cancels its subscriptions at once, as in Stripe."""
    customer = event["data"]["object"]
    clock = state.store("test_helpers.test_clock").get(customer.get("test_clock") or "")
    now = int(clock["frozen_time"]) if clock else state.now()
    for subscription in list(state.store("subscription").values()):
        if subscription["customer"] == customer["id"] and (
            subscription["status"] not in lifecycle.ENDED
        ):
            lifecycle.cancel(state, subscription, now, reason="cancellation_requested")
