"""``/v1/subscriptions`` and ``/v1/subscription_items``.

Create (``payment_behavior`` allow_incomplete / default_incomplete /
error_if_incomplete, trials), update (price changes with prorations, cancel at
period end, trial end, pause collection), cancel, pause, resume, retrieve, list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from paydesk.sandbox.billing import (
    invoicing,
    lifecycle,
    payments,
    periods,
    poller,
    prices,
    proration,
    shapes,
)
from paydesk.sandbox.billing.common import changed, matches, snapshot
from paydesk.sandbox.billing.outbox import emit, held
from paydesk.sandbox.errors import invalid_request, parameter_missing, resource_missing
from paydesk.sandbox.listing import created_filter, paginate
from paydesk.sandbox.params import Params
from paydesk.sandbox.routing import Ctx, Router
from paydesk.sandbox.state import Json, SandboxState

router = Router()

_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete")
_PRORATIONS = ("create_prorations", "none", "always_invoice")
_MISSING_PM = ("cancel", "create_invoice", "pause")
# Accepted for compatibility; they change nothing in the sandbox (no tax, no Connect).
_IGNORED = ("automatic_tax", "payment_settings", "off_session", "default_tax_rates", "on_behalf_of")
_CREATE = (
    "customer",
    "items",
    "add_invoice_items",
    "billing_cycle_anchor",
    "cancel_at",
    "cancel_at_period_end",
    "collection_method",
    "currency",
    "days_until_due",
    "default_payment_method",
    "description",
    "metadata",
    "payment_behavior",
    "proration_behavior",
    "trial_end",
    "trial_period_days",
    "trial_settings",
    *_IGNORED,
)
_UPDATE = (
    "items",
    "add_invoice_items",
    "billing_cycle_anchor",
    "cancel_at",
    "cancel_at_period_end",
    "cancellation_details",
    "collection_method",
    "days_until_due",
    "default_payment_method",
    "description",
    "metadata",
    "pause_collection",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
    "trial_end",
    "trial_settings",
    *_IGNORED,
)


# ---- parameter helpers ----------------------------------------------------------
def _payment_method(state: SandboxState, customer_id: str, pm_id: str | None) -> str | None:
    """A PM id that must be attached to the customer (Stripe's own check)."""
    if pm_id is None:
        return None
    pm = state.store("payment_method").get(pm_id)
    if pm is None:
        raise resource_missing("PaymentMethod", pm_id, param="default_payment_method")
    if pm.get("customer") != customer_id:
        raise invalid_request(
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
            param="default_payment_method",
        )
    return pm_id


def _recurring_price(ctx: Ctx, spec: Params) -> Json:
    price_id = spec.string("price")
    if price_id is None:
        data = spec.sub("price_data")
        if data is None:
            raise parameter_missing(spec.name("price"))
        inline = Params(dict(data.data), data.prefix)
        inline.data.setdefault("recurring", {"interval": "month"})
        price = prices.create_price(ctx, inline)
    else:
        price = prices.get_price(ctx.state, price_id, param=spec.name("price"))
    if price["recurring"] is None:
        raise invalid_request(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            param=spec.name("price"),
        )
    if not price["active"]:
        raise invalid_request(
            "The price specified is inactive. This field only accepts active prices.",
            param=spec.name("price"),
        )
    return price


def _item_specs(ctx: Ctx, key: str = "items") -> list[Params]:
    raw = ctx.params.array(key) or []
    specs = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise invalid_request(f"Invalid object: {key}[{index}]", param=f"{key}[{index}]")
        specs.append(Params(entry, f"{key}[{index}]"))
    return specs


def _timestamp_or_now(params: Params, key: str, now: int) -> int | None:
    value = params.string(key)
    if value is None:
        return None
    if value == "now":
        return now
    return params.integer(key)


def _new_item(ctx: Ctx, subscription_id: str, price: Json, spec: Params, now: int) -> Json:
    return shapes.subscription_item(
        id=ctx.state.new_id("si"),
        created=now,
        subscription_id=subscription_id,
        price_object=price,
        quantity=spec.integer("quantity", minimum=0) or 1,
        period=(now, now),
        metadata=spec.metadata(),
    )


def _check_compatible(items: list[Json], param: str) -> None:
    first = items[0]["price"]
    for item in items[1:]:
        price = item["price"]
        if price["currency"] != first["currency"]:
            raise invalid_request(
                "All prices on a subscription must have the same currency.", param=param
            )
        if price["recurring"]["interval"] != first["recurring"]["interval"] or (
            price["recurring"]["interval_count"] != first["recurring"]["interval_count"]
        ):
            raise invalid_request(
                "All prices on a subscription must have the same `recurring.interval` and "
                "`recurring.interval_count`.",
                param=param,
            )


def _add_invoice_items(ctx: Ctx, subscription: Json, now: int) -> None:
    """One-off prices billed on the next invoice (``add_invoice_items``)."""
    for spec in _item_specs(ctx, "add_invoice_items"):
        price_id = spec.required_string("price")
        price = prices.get_price(ctx.state, price_id, param=spec.name("price"))
        quantity = spec.integer("quantity", minimum=1) or 1
        customer = ctx.state.store("customer").get(subscription["customer"]) or {}
        obj = shapes.invoice_item(
            id=ctx.state.new_id("ii"),
            created=now,
            customer_id=subscription["customer"],
            amount=price["unit_amount"] * quantity,
            currency=price["currency"],
            description=invoicing.price_label(ctx.state, price).split(" (at")[0],
            period=(now, now),
            proration=False,
            subscription_id=subscription["id"],
            price_id=price["id"],
            quantity=quantity,
            metadata={},
            test_clock=customer.get("test_clock"),
        )
        ctx.state.add(obj)
        emit(ctx.state, "invoiceitem.created", obj)


def _apply_trial_settings(subscription: Json, p: Params) -> None:
    settings = p.sub("trial_settings")
    if settings is None:
        return
    end = settings.sub("end_behavior")
    if end is not None:
        missing = end.enum("missing_payment_method", _MISSING_PM)
        if missing is not None:
            subscription["trial_settings"]["end_behavior"]["missing_payment_method"] = missing


# ---- create ---------------------------------------------------------------------
@router.post("/v1/subscriptions", params=_CREATE)
def create(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    customer_id = p.required_string("customer")
    state.get("customer", customer_id, label="customer", param="customer")
    now = state.now_for_customer(customer_id)
    behavior = p.enum("payment_behavior", (*_BEHAVIORS, "pending_if_incomplete"))
    if behavior == "pending_if_incomplete":
        raise invalid_request(
            "`pending_if_incomplete` is only supported when updating a subscription.",
            param="payment_behavior",
        )
    behavior = behavior or "allow_incomplete"
    p.enum("proration_behavior", _PRORATIONS)
    collection = p.enum("collection_method", ("charge_automatically", "send_invoice"))
    specs = _item_specs(ctx)
    if not specs:
        raise parameter_missing("items")
    pm_id = _payment_method(state, customer_id, p.string("default_payment_method"))
    trial_days = p.integer("trial_period_days", minimum=0)
    trial_end = _timestamp_or_now(p, "trial_end", now)
    if trial_days and trial_end is None:
        trial_end = now + trial_days * 86_400
    if trial_end is not None and trial_end < now:
        raise invalid_request(
            "Invalid timestamp: must be an integer Unix timestamp in the future.",
            param="trial_end",
        )
    if trial_end == now:
        trial_end = None

    subscription_id = state.new_id("sub")
    items = [_new_item(ctx, subscription_id, _recurring_price(ctx, s), s, now) for s in specs]
    _check_compatible(items, "items")
    currency = items[0]["price"]["currency"]
    if p.string("currency") is not None and p.string("currency", required=False) != currency:
        raise invalid_request("The currency does not match the prices' currency.", param="currency")
    customer = state.store("customer")[customer_id]
    params: dict[str, Any] = dict(p.data)
    params["default_payment_method"] = pm_id
    params["collection_method"] = collection or "charge_automatically"
    params["days_until_due"] = p.integer("days_until_due", minimum=0)
    params["metadata"] = p.metadata()
    subscription = shapes.subscription(
        id=subscription_id,
        created=now,
        customer_id=customer_id,
        currency=currency,
        anchor=now,
        items=items,
        params=params,
        test_clock=customer.get("test_clock"),
    )
    if params["collection_method"] == "send_invoice" and params["days_until_due"] is None:
        raise parameter_missing("days_until_due")
    _apply_trial_settings(subscription, p)
    anchor = p.integer("billing_cycle_anchor")
    if trial_end is not None:
        subscription["trial_start"] = now
        subscription["trial_end"] = trial_end
        lifecycle.anchor_at(state, subscription, now, first_end=trial_end)
    elif anchor is not None and anchor > now:
        # A future anchor: the first period is a prorated stub up to the anchor.
        lifecycle.anchor_at(state, subscription, now, first_end=anchor)
        subscription["billing_cycle_anchor"] = anchor
    else:
        lifecycle.anchor_at(state, subscription, now)
    if p.boolean("cancel_at_period_end"):
        subscription["cancel_at_period_end"] = True
        subscription["cancel_at"] = lifecycle.current_period(subscription)[1]
    cancel_at = p.integer("cancel_at")
    if cancel_at is not None:
        subscription["cancel_at"] = cancel_at

    state.add(subscription)
    with held(state, enabled=behavior == "error_if_incomplete"):
        state.private_of(subscription_id)["creating"] = True
        try:
            _start(ctx, subscription, behavior, trial_end, anchor, now)
        except BaseException:
            _forget(state, subscription)
            raise
        finally:
            state.private_of(subscription_id).pop("creating", None)
    if subscription["test_clock"] is None:
        poller.ensure_running(state)
    return subscription


def _start(
    ctx: Ctx, subscription: Json, behavior: str, trial_end: int | None, anchor: int | None, now: int
) -> None:
    """First invoice and first status; raises (after cleanup) for error_if_incomplete."""
    state = ctx.state
    _add_invoice_items(ctx, subscription, now)
    if trial_end is not None:
        subscription["status"] = "trialing"
        invoice = _first_invoice(state, subscription, now, zero=True)
        emit(state, "customer.subscription.created", subscription)
        lifecycle.maybe_warn_trial_end(state, subscription, now)
        return
    if anchor is not None and anchor > now:
        # Stub period until the anchor is charged pro rata.
        end = lifecycle.current_period(subscription)[1]
        interval, count = lifecycle.billing_interval(subscription)
        for item in subscription["items"]["data"]:
            item_amount = item["price"]["unit_amount"] * item["quantity"]
            full_start = periods.boundary(anchor, interval, count, -1)
            share = proration.remaining_share(item_amount, full_start, anchor, now)
            lifecycle.add_proration_item(
                state, subscription, item, share, now, end, "Remaining time"
            )
        invoice = lifecycle.invoice_now(
            state, subscription, now, billing_reason="subscription_create", with_cycle=False
        )
    else:
        invoice = _first_invoice(state, subscription, now, zero=False)
    if invoice["status"] == "paid" or subscription["collection_method"] == "send_invoice":
        subscription["status"] = "active"
    elif behavior == "default_incomplete":
        invoicing.open_payment(
            state, invoice, now, invoicing.payment_method_for(state, invoice, None)
        )
    else:
        pm = invoicing.payment_method_for(state, invoice, None)
        if pm is None:
            if behavior == "error_if_incomplete":
                raise invalid_request(
                    "This customer has no attached payment source or default payment method. "
                    "Please consider adding a default payment method.",
                    code="resource_missing",
                )
            invoicing.open_payment(state, invoice, now, None)
        else:
            error = invoicing.attempt_payment(state, invoice, now, payment_method=pm)
            if error is not None and behavior == "error_if_incomplete":
                raise error
            if error is None:
                subscription["status"] = "active"
    emit(state, "customer.subscription.created", subscription)


def _first_invoice(state: SandboxState, subscription: Json, now: int, *, zero: bool) -> Json:
    """The ``subscription_create`` invoice: the first period, or $0 for a trial."""
    invoice = invoicing.create_draft(
        state,
        customer_id=subscription["customer"],
        currency=subscription["currency"],
        billing_reason="subscription_create",
        period=(now, now),
        now=now,
        subscription=subscription,
    )
    for item in subscription["items"]["data"]:
        price = item["price"]
        label = invoicing.price_label(state, price)
        invoicing.add_line(
            state,
            invoice,
            amount=0 if zero else price["unit_amount"] * item["quantity"],
            description=(
                f"Trial period for {label.split(' (at')[0]}"
                if zero
                else f"{item['quantity']} × {label}"
            ),
            period=(item["current_period_start"], item["current_period_end"]),
            quantity=item["quantity"],
            price_id=price["id"],
            subscription_item=item,
        )
    invoicing.add_pending_items(state, invoice, subscription_id=subscription["id"])
    subscription["latest_invoice"] = invoice["id"]
    invoicing.announce(state, invoice)
    invoicing.finalize(state, invoice, now)
    return invoice


def _forget(state: SandboxState, subscription: Json) -> None:
    """Remove every trace of a subscription whose creation failed."""
    state.store("subscription").pop(subscription["id"], None)
    for invoice in list(state.store("invoice").values()):
        if (
            invoicing.subscription_of(state, invoice) is None
            and invoice["parent"]
            and (invoice["parent"]["subscription_details"]["subscription"] == subscription["id"])
        ):
            state.store("invoice").pop(invoice["id"], None)
            for record in list(state.store("invoice_payment").values()):
                if record["invoice"] == invoice["id"]:
                    state.store("invoice_payment").pop(record["id"], None)
    for item in list(state.store("invoiceitem").values()):
        parent = item["parent"]
        if parent and parent["subscription_details"]["subscription"] == subscription["id"]:
            state.store("invoiceitem").pop(item["id"], None)


# ---- retrieve / list ------------------------------------------------------------
@router.get("/v1/subscriptions/{id}")
def retrieve(ctx: Ctx) -> Json:
    return lifecycle.get_subscription(ctx.state, ctx.path["id"])


_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)


@router.list(
    "/v1/subscriptions",
    params=("customer", "price", "plan", "status", "test_clock", "created", "collection_method"),
)
def list_subscriptions(ctx: Ctx) -> Json:
    p = ctx.params
    customer = p.string("customer")
    price = p.string("price") or p.string("plan")
    status = p.enum("status", _STATUSES)
    clock = p.string("test_clock")
    collection = p.enum("collection_method", ("charge_automatically", "send_invoice"))

    def status_ok(sub: Json) -> bool:
        if status is None:  # Stripe's default hides canceled subscriptions
            return sub["status"] not in lifecycle.ENDED
        if status == "all":
            return True
        if status == "ended":
            return sub["status"] in lifecycle.ENDED
        return bool(sub["status"] == status)

    rows = (
        s
        for s in ctx.state.iter_newest_first("subscription")
        if matches(s, "customer", customer)
        and matches(s, "test_clock", clock)
        and matches(s, "collection_method", collection)
        and (price is None or any(i["price"]["id"] == price for i in s["items"]["data"]))
        and status_ok(s)
    )
    return paginate(ctx, created_filter(ctx, rows), "/v1/subscriptions")


# ---- update ---------------------------------------------------------------------
@router.post("/v1/subscriptions/{id}", params=_UPDATE)
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
    behavior = p.enum("payment_behavior", (*_BEHAVIORS, "pending_if_incomplete"))
    behavior = behavior or "allow_incomplete"
    proration_behavior = p.enum("proration_behavior", _PRORATIONS) or "create_prorations"
    at = p.integer("proration_date") or now
    before = snapshot(subscription)
    with held(state, enabled=behavior == "error_if_incomplete"):
        try:
            reported = _update(ctx, subscription, now, at, behavior, proration_behavior)
        except BaseException:
            _restore(state, subscription, before)
            raise
    diff = changed(reported or before, subscription)
    if diff:
        emit(state, "customer.subscription.updated", subscription, diff)
    return subscription


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
        subscription["default_payment_method"] = _payment_method(
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
    _apply_trial_settings(subscription, p)
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
    _add_invoice_items(ctx, subscription, now)

    trial_end = _timestamp_or_now(p, "trial_end", now) if "trial_end" in p else None
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
    error = invoicing.attempt_payment(state, invoice, now, payment_method=pm) if pm else None
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
    specs = _item_specs(ctx)
    if not specs:
        return None
    state = ctx.state
    start, end = lifecycle.current_period(subscription)
    old_interval = lifecycle.billing_interval(subscription)
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
            added = _new_item(ctx, subscription["id"], _recurring_price(ctx, spec), spec, now)
            added["current_period_start"], added["current_period_end"] = start, end
            kept.append(added)
            changes.append((None, added))
            continue
        old = snapshot(item)
        if spec.string("price") is not None or spec.sub("price_data") is not None:
            price = _recurring_price(ctx, spec)
            item["price"] = price
            item["plan"] = shapes.plan(price)
        if "quantity" in spec:
            item["quantity"] = spec.integer("quantity", minimum=0) or 0
        item["metadata"] = spec.metadata(item["metadata"])
        if old["price"]["id"] != item["price"]["id"] or old["quantity"] != item["quantity"]:
            changes.append((old, item))
    if not kept:
        raise invalid_request("A subscription must have at least one item.", param="items")
    _check_compatible(kept, "items")
    subscription["items"]["data"] = kept
    if not changes:
        return None
    new_interval = lifecycle.billing_interval(subscription)
    prorate = proration_behavior != "none" and subscription["status"] != "trialing"
    if new_interval != old_interval:
        # A new billing interval restarts the cycle now and bills the new period at once,
        # crediting the unused time of the old one.
        if prorate:
            for previous, _current in changes:
                if previous is not None:
                    _prorate(state, subscription, previous, None, start, end, now, at)
        lifecycle.anchor_at(state, subscription, now)
        return "cycle"
    if prorate:
        for previous, current in changes:
            _prorate(state, subscription, previous, current, start, end, now, at)
    if proration_behavior == "always_invoice" and prorate:
        return "prorations"
    return None


def _prorate(
    state: SandboxState,
    subscription: Json,
    old: Json | None,
    new: Json | None,
    start: int,
    end: int,
    now: int,
    at: int,
) -> None:
    old_amount = old["price"]["unit_amount"] * old["quantity"] if old else 0
    new_amount = new["price"]["unit_amount"] * new["quantity"] if new else 0
    result = proration.price_change(old_amount, new_amount, start, end, at)
    data = state.private_of(subscription["id"])
    if old is not None and result.credit:
        ii = lifecycle.add_proration_item(
            state, subscription, old, result.credit, at, end, "Unused time", old["price"]
        )
        data["new_items"].append(ii["id"])
    if new is not None and result.debit:
        ii = lifecycle.add_proration_item(
            state, subscription, new, result.debit, at, end, "Remaining time", new["price"]
        )
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
    p.enum("proration_behavior", _PRORATIONS)
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


# ---- subscription items ---------------------------------------------------------
def _find_item(state: SandboxState, item_id: str) -> Json:
    for subscription in state.store("subscription").values():
        for item in subscription["items"]["data"]:
            if item["id"] == item_id:
                return item  # type: ignore[no-any-return]
    raise resource_missing("subscription item", item_id)


@router.get("/v1/subscription_items/{id}")
def retrieve_item(ctx: Ctx) -> Json:
    return _find_item(ctx.state, ctx.path["id"])


@router.list("/v1/subscription_items", params=("subscription",))
def list_items(ctx: Ctx) -> Json:
    subscription_id = ctx.params.required_string("subscription")
    subscription = lifecycle.get_subscription(ctx.state, subscription_id, param="subscription")
    return paginate(
        ctx,
        list(subscription["items"]["data"]),
        f"/v1/subscription_items?subscription={subscription_id}",
    )


def _item_change(ctx: Ctx, subscription_id: str, item: Json) -> Json:
    """Run ``POST /v1/subscriptions/{id}`` with one ``items[0]`` entry built from an
    item-level request, so both paths prorate and invoice identically."""
    p = ctx.params
    data: Json = {"items": [item]}
    for key in ("proration_behavior", "proration_date", "payment_behavior"):
        if key in p:
            data[key] = p.data[key]
    return update_subscription(replace(ctx, params=Params(data), path={"id": subscription_id}))


_ITEM_WRITE = ("price", "quantity", "metadata", "proration_behavior", "proration_date",
               "payment_behavior", "off_session")  # fmt: skip


@router.post("/v1/subscription_items", params=("subscription", *_ITEM_WRITE))
def create_item(ctx: Ctx) -> Json:
    p = ctx.params
    subscription_id = p.required_string("subscription")
    lifecycle.get_subscription(ctx.state, subscription_id, param="subscription")
    spec: Json = {"price": p.required_string("price")}
    for key in ("quantity", "metadata"):
        if key in p:
            spec[key] = p.data[key]
    subscription = _item_change(ctx, subscription_id, spec)
    return subscription["items"]["data"][-1]  # type: ignore[no-any-return]


@router.post("/v1/subscription_items/{id}", params=_ITEM_WRITE)
def update_item(ctx: Ctx) -> Json:
    item = _find_item(ctx.state, ctx.path["id"])
    spec: Json = {"id": item["id"]}
    for key in ("price", "quantity", "metadata"):
        if key in ctx.params:
            spec[key] = ctx.params.data[key]
    _item_change(ctx, item["subscription"], spec)
    return _find_item(ctx.state, item["id"])


@router.delete(
    "/v1/subscription_items/{id}", params=("proration_behavior", "proration_date", "clear_usage")
)
def delete_item(ctx: Ctx) -> Json:
    item = _find_item(ctx.state, ctx.path["id"])
    _item_change(ctx, item["subscription"], {"id": item["id"], "deleted": "true"})
    return {"id": item["id"], "object": "subscription_item", "deleted": True}
