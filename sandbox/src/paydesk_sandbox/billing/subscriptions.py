"""``/v1/subscriptions``: create, retrieve, list.

Create handles ``payment_behavior`` allow_incomplete (default), default_incomplete
(a PaymentIntent the client confirms) and error_if_incomplete (nothing is kept when
the first payment fails), trials and future billing-cycle anchors. Updates, cancel,
pause and resume live in :mod:`subscription_updates`; item endpoints in
:mod:`subscription_items`.
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.billing import (
    discounts,
    invoicing,
    lifecycle,
    periods,
    poller,
    proration,
    shapes,
)
from paydesk_sandbox.billing import subscription_params as sp
from paydesk_sandbox.billing.common import matches
from paydesk_sandbox.billing.outbox import emit, held
from paydesk_sandbox.errors import invalid_request, parameter_missing
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState

router = Router()


# ---- create ---------------------------------------------------------------------
@router.post("/v1/subscriptions", params=sp.CREATE_PARAMS)
def create(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    customer_id = p.required_string("customer")
    state.get("customer", customer_id, label="customer", param="customer")
    now = state.now_for_customer(customer_id)
    behavior = p.enum("payment_behavior", (*sp.BEHAVIORS, "pending_if_incomplete"))
    if behavior == "pending_if_incomplete":
        raise invalid_request(
            "`pending_if_incomplete` is only supported when updating a subscription.",
            param="payment_behavior",
        )
    behavior = behavior or "allow_incomplete"
    p.enum("proration_behavior", sp.PRORATIONS)
    collection = p.enum("collection_method", ("charge_automatically", "send_invoice"))
    specs = sp.item_specs(ctx)
    if not specs:
        raise parameter_missing("items")
    pm_id = sp.attached_payment_method(state, customer_id, p.string("default_payment_method"))
    trial_days = p.integer("trial_period_days", minimum=0)
    trial_end = sp.timestamp_or_now(p, "trial_end", now)
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
    items = [sp.new_item(ctx, subscription_id, sp.recurring_price(ctx, s), s, now) for s in specs]
    sp.check_compatible(items, "items")
    currency = items[0]["price"]["currency"]
    if p.string("currency") is not None and p.string("currency", required=False) != currency:
        raise invalid_request("The currency does not match the prices' currency.", param="currency")
    customer = state.store("customer")[customer_id]
    first_amount = sum(item["price"]["unit_amount"] * item["quantity"] for item in items)
    discount_specs = discounts.parse(
        state, p, customer_id=customer_id, currency=currency, amount_due=first_amount, now=now
    )
    item_discounts = [
        discounts.parse(
            state, spec, customer_id=customer_id, currency=currency, amount_due=None, now=now
        )
        for spec in specs
    ]
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
    subscription["billing_mode"] = sp.billing_mode(p)
    sp.apply_trial_settings(subscription, p)
    sp.apply_payment_settings(subscription, p)
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
            subscription["discounts"] = [
                discounts.create(
                    state, spec, customer_id=customer_id, now=now, subscription_id=subscription_id
                )["id"]
                for spec in discount_specs or []
            ]
            for item, item_specs in zip(items, item_discounts, strict=True):
                item["discounts"] = [
                    discounts.create(
                        state,
                        spec,
                        customer_id=customer_id,
                        now=now,
                        subscription_id=subscription_id,
                        subscription_item_id=item["id"],
                    )["id"]
                    for spec in item_specs or []
                ]
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
    sp.add_invoice_items(ctx, subscription, now)
    if trial_end is not None:
        subscription["status"] = "trialing"
        _first_invoice(state, subscription, now, zero=True)
        emit(state, "customer.subscription.created", subscription)
        lifecycle.maybe_warn_trial_end(state, subscription, now)
        return
    if anchor is not None and anchor > now:
        # Stub period until the anchor is charged pro rata.
        end = lifecycle.current_period(subscription)[1]
        interval, count = lifecycle.billing_interval(subscription)
        items = subscription["items"]["data"]
        offs = discounts.period_discounts(state, subscription, items, now)
        for item in items:
            full = item["price"]["unit_amount"] * item["quantity"]
            full_start = periods.boundary(anchor, interval, count, -1)
            share = proration.discounted_share(
                full, offs.get(item["id"], []), full_start, anchor, now
            )
            lifecycle.add_proration_item(
                state, subscription, item, 0, now, end, "Remaining time", share=share
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
                    param="default_payment_method",
                )
            invoicing.open_payment(state, invoice, now, None)
        else:
            # Creating a subscription charges on-session unless told otherwise, so a
            # card that needs 3-D Secure leaves the PaymentIntent requires_action.
            error = invoicing.attempt_payment(
                state,
                invoice,
                now,
                payment_method=pm,
                off_session=bool(ctx.params.boolean("off_session", False)),
            )
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
        parent = invoice["parent"]
        if parent and parent["subscription_details"]["subscription"] == subscription["id"]:
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
