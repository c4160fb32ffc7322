"""The invoice lifecycle: draft → lines → finalize → pay / fail / void.

Route handlers, subscription changes and test-clock renewals all go through these
functions so that every path emits the same events in the same order:
``invoice.created`` (draft), ``invoice.finalized``, the core's payment events, then
``invoice.paid`` + ``invoice.payment_succeeded`` + ``invoice_payment.paid`` or
``invoice.payment_failed``, and ``invoice.updated`` after each payment attempt.
"""

from __future__ import annotations

from datetime import UTC, datetime

from paydesk_sandbox.billing import (
    discounts,
    dunning,
    payments,
    prices,
    settings,
    shapes,
    totals,
)
from paydesk_sandbox.billing.common import changed, snapshot
from paydesk_sandbox.billing.money import format_amount
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.billing.subscription_status import (
    apply_pending_update,
    end_after_retries,
    subscription_of,
)
from paydesk_sandbox.errors import StripeError, card_error, invalid_request
from paydesk_sandbox.money import MINIMUMS
from paydesk_sandbox.state import Json, SandboxState, clone

FINALIZE_DELAY = 3_600  # Stripe finalizes renewal invoices about an hour after creating them


def get_invoice(state: SandboxState, invoice_id: str, param: str = "id") -> Json:
    """The invoice or a 404 ``No such invoice``."""
    return state.get("invoice", invoice_id, label="invoice", param=param)


def day_label(moment: int) -> str:
    """``27 Nov 2026``, the date format of Stripe's proration descriptions."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%d %b %Y").lstrip("0")


def price_label(state: SandboxState, price: Json) -> str:
    """``Premium (at $9.99 / month)``."""
    product = state.store("product").get(price["product"])
    name = product["name"] if product else price["product"]
    money = format_amount(price["unit_amount"], price["currency"])
    rec = price["recurring"]
    if rec is None:
        return f"{name} (at {money})"
    every = (
        rec["interval"]
        if rec["interval_count"] == 1
        else (f"every {rec['interval_count']} {rec['interval']}s")
    )
    return f"{name} (at {money} / {every})"


def create_draft(
    state: SandboxState,
    *,
    customer_id: str,
    currency: str,
    billing_reason: str,
    period: tuple[int, int],
    now: int,
    subscription: Json | None = None,
    params: Json | None = None,
) -> Json:
    """Store a new draft invoice (no event yet: call :func:`announce` once lines are in)."""
    customer = state.get("customer", customer_id, label="customer", param="customer")
    invoice = shapes.invoice(
        id=state.new_id("in"),
        created=now,
        customer=customer,
        currency=currency,
        billing_reason=billing_reason,
        period=period,
        subscription_id=subscription["id"] if subscription else None,
        subscription_metadata=dict(subscription["metadata"]) if subscription else None,
        params=params or {},
        test_clock=customer.get("test_clock"),
    )
    if subscription is not None:
        invoice["collection_method"] = subscription["collection_method"]
        invoice["default_payment_method"] = None
        invoice["discounts"] = discounts.for_new_invoice(state, subscription, now)
    state.add(invoice)
    if customer.get("currency") is None:
        # A customer's first invoice fixes its billing currency, as on Stripe.
        before = snapshot(customer)
        customer["currency"] = currency
        state.emit("customer.updated", customer, changed(before, customer))
    return invoice


def add_line(
    state: SandboxState,
    invoice: Json,
    *,
    amount: int,
    description: str | None,
    period: tuple[int, int],
    quantity: int = 1,
    price_id: str | None = None,
    subscription_item: Json | None = None,
    invoice_item: Json | None = None,
    proration: bool = False,
) -> Json:
    """Append a line (from a subscription item or an invoice item) and refresh the totals."""
    subscription_id = None
    if subscription_item is not None:
        subscription_id = subscription_item["subscription"]
    elif invoice_item is not None and invoice_item["parent"]:
        subscription_id = invoice_item["parent"]["subscription_details"]["subscription"]
    line = shapes.line_item(
        id=state.new_id("il"),
        invoice_id=invoice["id"],
        amount=amount,
        currency=invoice["currency"],
        description=description,
        period=period,
        quantity=quantity,
        price_id=price_id,
        product_id=prices.product_of(state, price_id),
        subscription_id=subscription_id,
        subscription_item_id=subscription_item["id"] if subscription_item else None,
        invoice_item_id=invoice_item["id"] if invoice_item else None,
        proration=proration,
        metadata=invoice_item["metadata"] if invoice_item else {},
    )
    if invoice_item is not None:
        line["discountable"] = invoice_item["discountable"]
        line["discounts"] = list(invoice_item["discounts"])
    elif subscription_item is not None:
        line["discounts"] = list(subscription_item.get("discounts") or [])
    invoice["lines"]["data"].append(line)
    refresh_totals(state, invoice)
    return line


def add_subscription_lines(state: SandboxState, invoice: Json, subscription: Json) -> None:
    """One line per subscription item for its current period."""
    for item in subscription["items"]["data"]:
        price = item["price"]
        add_line(
            state,
            invoice,
            amount=price["unit_amount"] * item["quantity"],
            description=f"{item['quantity']} × {price_label(state, price)}",
            period=(item["current_period_start"], item["current_period_end"]),
            quantity=item["quantity"],
            price_id=price["id"],
            subscription_item=item,
        )


def add_pending_items(
    state: SandboxState, invoice: Json, *, subscription_id: str | None = None
) -> None:
    """Move the customer's pending invoice items onto ``invoice``.

    With ``subscription_id`` only that subscription's items (prorations) move;
    without it, only items not tied to any subscription do.
    """
    for item in list(state.store("invoiceitem").values()):
        if item["invoice"] is not None or item["customer"] != invoice["customer"]:
            continue
        parent = item["parent"]
        owner = parent["subscription_details"]["subscription"] if parent else None
        if owner != subscription_id or item["currency"] != invoice["currency"]:
            continue
        item["invoice"] = invoice["id"]
        add_line(
            state,
            invoice,
            amount=item["amount"],
            description=item["description"],
            period=(item["period"]["start"], item["period"]["end"]),
            quantity=item["quantity"],
            price_id=(item["pricing"].get("price_details") or {}).get("price"),
            invoice_item=item,
            proration=item["proration"],
        )


def refresh_totals(state: SandboxState, invoice: Json) -> None:
    """Recompute a draft's totals from its lines and discounts (balance is applied at
    finalization)."""
    off = discounts.apply(state, invoice)
    result = totals.compute((line["amount"] for line in invoice["lines"]["data"]), 0, off)
    invoice["subtotal"] = invoice["subtotal_excluding_tax"] = result.subtotal
    invoice["total"] = invoice["total_excluding_tax"] = result.total
    invoice["amount_due"] = invoice["amount_remaining"] = result.amount_due


def announce(state: SandboxState, invoice: Json) -> None:
    """Emit ``invoice.created`` for a draft whose lines are complete."""
    emit(state, "invoice.created", invoice)


def finalize(state: SandboxState, invoice: Json, now: int) -> None:
    """draft → open: apply the customer's balance, number the invoice, emit ``finalized``.

    An invoice with nothing to pay is marked paid right away.
    """
    if invoice["status"] != "draft":
        raise invalid_request(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            code="invoice_not_editable",
        )
    customer = state.get("customer", invoice["customer"], label="customer")
    balance = int(customer.get("balance") or 0)
    off = discounts.apply(state, invoice)
    result = totals.compute((line["amount"] for line in invoice["lines"]["data"]), balance, off)
    ending_balance, amount_due = result.ending_balance, result.amount_due
    if 0 < amount_due < MINIMUMS.get(invoice["currency"], 1):
        # Stripe cannot charge less than the currency's minimum: it carries the amount
        # over to the customer's balance and marks this invoice paid.
        ending_balance, amount_due = ending_balance + amount_due, 0
    invoice["starting_balance"] = result.starting_balance
    invoice["ending_balance"] = ending_balance
    invoice["amount_due"] = invoice["amount_remaining"] = amount_due
    before = snapshot(customer)
    invoice["number"] = _next_number(customer)
    if ending_balance != balance:
        customer["balance"] = ending_balance
        state.emit("customer.updated", customer, changed(before, customer))
    invoice["status"] = "open"
    invoice["status_transitions"]["finalized_at"] = now
    invoice["effective_at"] = now
    invoice["automatically_finalizes_at"] = None
    invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/sandbox/{invoice['id']}"
    invoice["invoice_pdf"] = f"https://pay.stripe.com/invoice/sandbox/{invoice['id']}/pdf"
    if invoice["collection_method"] == "send_invoice":
        subscription = subscription_of(state, invoice)
        days = state.private_of(invoice["id"]).get("days_until_due")
        if days is None and subscription is not None:
            days = subscription["days_until_due"]
        days = 30 if days is None else int(days)
        invoice["due_date"] = now + days * 86_400
    emit(state, "invoice.finalized", invoice)
    discounts.after_finalize(state, invoice, now)
    if invoice["amount_due"] == 0:
        mark_paid(state, invoice, now, payment_intent=None)


def _next_number(customer: Json) -> str:
    """``<invoice_prefix>-<next_invoice_sequence>``; the customer's sequence advances
    (Stripe numbers per customer by default)."""
    sequence = int(customer.get("next_invoice_sequence") or 1)
    customer["next_invoice_sequence"] = sequence + 1
    prefix = customer.get("invoice_prefix") or customer["id"][4:12].upper()
    return f"{prefix}-{sequence:04d}"


def payment_method_for(state: SandboxState, invoice: Json, explicit: str | None) -> str | None:
    """The PM to charge: explicit, invoice default, subscription default, customer default."""
    if explicit:
        return explicit
    if invoice["default_payment_method"]:
        return str(invoice["default_payment_method"])
    subscription = subscription_of(state, invoice)
    if subscription is not None and subscription["default_payment_method"]:
        return str(subscription["default_payment_method"])
    customer = state.get("customer", invoice["customer"], label="customer")
    settings_ = customer.get("invoice_settings") or {}
    default = settings_.get("default_payment_method")
    return str(default) if default else None


def open_payment(state: SandboxState, invoice: Json, now: int, payment_method: str | None) -> Json:
    """Create the (unconfirmed) PaymentIntent that a client confirms to pay ``invoice``."""
    intent = payments.create_intent(
        state,
        amount=invoice["amount_remaining"],
        currency=invoice["currency"],
        customer_id=invoice["customer"],
        payment_method=payment_method,
        description=_payment_description(invoice),
        invoice_id=invoice["id"],
        save_payment_method=_saves_payment_method(state, invoice),
    )
    _record_payment(state, invoice, intent, now)
    return intent


def _saves_payment_method(state: SandboxState, invoice: Json) -> bool:
    subscription = subscription_of(state, invoice)
    if subscription is None:
        return False
    choice = (subscription["payment_settings"] or {}).get("save_default_payment_method")
    return bool(choice == "on_subscription")


def _payment_description(invoice: Json) -> str:
    if invoice["billing_reason"] == "subscription_create":
        return "Subscription creation"
    if invoice["billing_reason"] == "subscription_cycle":
        return "Subscription renewal"
    if invoice["billing_reason"] == "subscription_update":
        return "Subscription update"
    return f"Payment for Invoice {invoice['number'] or invoice['id']}"


def _record_payment(state: SandboxState, invoice: Json, intent: Json, now: int) -> Json:
    for existing in state.store("invoice_payment").values():
        if existing["invoice"] == invoice["id"] and existing["status"] == "open":
            existing["is_default"] = False
            existing["status"] = "canceled"
            existing["status_transitions"]["canceled_at"] = now
    record = shapes.invoice_payment(
        id=state.new_id("inpay"),
        created=now,
        invoice_id=invoice["id"],
        amount=invoice["amount_remaining"],
        currency=invoice["currency"],
        payment_intent_id=intent["id"],
    )
    state.add(record)
    state.private_of(invoice["id"])["payment_intent"] = intent["id"]
    return record


def current_intent(state: SandboxState, invoice: Json) -> Json | None:
    """The PaymentIntent of the invoice's open payment, if one was created."""
    intent_id = state.private_of(invoice["id"]).get("payment_intent")
    if not intent_id:
        return None
    return state.store("payment_intent").get(intent_id)


def attempt_payment(
    state: SandboxState,
    invoice: Json,
    now: int,
    *,
    payment_method: str | None = None,
    off_session: bool = True,
) -> StripeError | None:
    """Charge an open invoice once; returns the decline (already recorded) or None.

    Failures update ``attempt_count``, schedule the next retry for subscription
    invoices and move the subscription along its dunning path.
    """
    if invoice["status"] != "open":
        raise invalid_request(f"Invoice is already {invoice['status']}.", code="invoice_not_open")
    pm = payment_method_for(state, invoice, payment_method)
    before = snapshot(invoice)
    intent = current_intent(state, invoice)
    if intent is None or intent["status"] in ("succeeded", "canceled"):
        intent = open_payment(state, invoice, now, pm)
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    # The payment_intent.* listeners (see invoices.py) react to payments confirmed by
    # clients; this flag tells them that this attempt handles its own outcome.
    marker = state.private_of(intent["id"])
    marker["billing_attempt"] = True
    try:
        outcome = payments.confirm_intent(
            state, intent["id"], payment_method=pm, off_session=off_session
        )
    finally:
        marker.pop("billing_attempt", None)
    if outcome.succeeded:
        mark_paid(state, invoice, now, payment_intent=outcome.payment_intent)
        return None
    if outcome.requires_action:
        error: StripeError = card_error(
            "invoice_payment_intent_requires_action",
            "This payment requires additional user action before it can be completed "
            "successfully. Payment can be completed using the PaymentIntent associated with "
            "the invoice.",
            extra={"payment_intent": clone(outcome.payment_intent)},
        )
    else:
        error = outcome.error or invalid_request(
            "This customer has no attached payment source or default payment method. Please "
            "consider adding a default payment method.",
            code="invoice_no_payment_method_types",
        )
    # An off-session charge that needs 3-D Secure is the "action required" case of
    # Stripe's SCA flow, even though the core reports it as a decline.
    if outcome.requires_action:
        # On-session 3-D Secure: not a failure yet; the customer completes it with the
        # invoice's PaymentIntent (the payment_intent.* listeners then settle it).
        emit(state, "invoice.payment_action_required", invoice)
        emit(state, "invoice.updated", invoice, changed(before, invoice))
        return error
    needs_action = error.code == "authentication_required"
    record_failure(state, invoice, now, before, requires_action=needs_action)
    return error


def record_failure(
    state: SandboxState, invoice: Json, now: int, before: Json, *, requires_action: bool = False
) -> None:
    """Events and dunning after a failed attempt on ``invoice``."""
    subscription = subscription_of(state, invoice)
    policy = settings.dunning_policy(state)
    # Stripe retries renewal and update invoices automatically; a subscription's first
    # invoice is not retried (the subscription stays incomplete, then expires).
    pending = subscription is not None and state.private_of(subscription["id"]).get(
        "pending_attempt"
    )
    if (
        subscription is not None
        and invoice["billing_reason"] != "subscription_create"
        and not pending
    ):
        outcome = dunning.after_failed_attempt(invoice["attempt_count"], now, policy)
        invoice["next_payment_attempt"] = outcome.next_payment_attempt
    else:
        outcome = None
        invoice["next_payment_attempt"] = None
    if requires_action:
        emit(state, "invoice.payment_action_required", invoice)
    emit(state, "invoice.payment_failed", invoice)
    emit(state, "invoice.updated", invoice, changed(before, invoice))
    if subscription is None or outcome is None:
        return
    if subscription["status"] in ("active", "trialing", "past_due"):
        if outcome.exhausted:
            end_after_retries(state, subscription, now, policy.end_state)
        elif subscription["status"] != "past_due":
            _set_subscription_status(state, subscription, "past_due")


def _set_subscription_status(state: SandboxState, subscription: Json, status: str) -> None:
    """Change a subscription's status with its ``customer.subscription.updated`` event."""
    before = snapshot(subscription)
    subscription["status"] = status
    emit(state, "customer.subscription.updated", subscription, changed(before, subscription))


def mark_paid(state: SandboxState, invoice: Json, now: int, *, payment_intent: Json | None) -> None:
    """open → paid, with the invoice and invoice-payment events; activates its subscription."""
    before = snapshot(invoice)
    paid_amount = invoice["amount_remaining"]
    invoice["status"] = "paid"
    invoice["amount_paid"] += paid_amount
    invoice["amount_remaining"] = 0
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["paid_at"] = now
    if payment_intent is not None:
        for record in state.store("invoice_payment").values():
            if record["payment"].get("payment_intent") == payment_intent["id"]:
                record["status"] = "paid"
                record["amount_paid"] = paid_amount
                record["status_transitions"]["paid_at"] = now
                emit(state, "invoice_payment.paid", record)
    emit(state, "invoice.paid", invoice)
    emit(state, "invoice.payment_succeeded", invoice)
    if before["status"] != "draft":
        emit(state, "invoice.updated", invoice, changed(before, invoice))
    subscription = subscription_of(state, invoice)
    if (
        subscription is not None
        and payment_intent is not None
        and payment_intent.get("payment_method")
        and _saves_payment_method(state, invoice)
    ):
        # on_subscription: the card that paid becomes the subscription's default, so
        # renewals can charge it off-session.
        subscription["default_payment_method"] = payment_intent["payment_method"]
    if (
        subscription is not None
        and state.private_of(subscription["id"]).get("pending_invoice") == invoice["id"]
    ):
        apply_pending_update(state, subscription)
    if (
        subscription is not None
        and subscription["latest_invoice"] == invoice["id"]
        and subscription["status"] in ("incomplete", "past_due", "unpaid")
    ):
        if state.private_of(subscription["id"]).get("creating"):
            # Paid while being created: customer.subscription.created carries "active".
            subscription["status"] = "active"
        else:
            _set_subscription_status(state, subscription, "active")


def void(state: SandboxState, invoice: Json, now: int) -> None:
    """open → void (the open PaymentIntent is canceled)."""
    if invoice["status"] != "open":
        raise invalid_request(
            f"You can only void open invoices. This invoice is {invoice['status']}.",
            code="invoice_not_open" if invoice["status"] != "draft" else "invoice_not_editable",
        )
    before = snapshot(invoice)
    intent = current_intent(state, invoice)
    if intent is not None and intent["status"] not in ("succeeded", "canceled"):
        payments.cancel_intent(state, intent["id"], reason="void_invoice")
    for record in state.store("invoice_payment").values():
        if record["invoice"] == invoice["id"] and record["status"] == "open":
            record["status"] = "canceled"
            record["status_transitions"]["canceled_at"] = now
    invoice["status"] = "void"
    invoice["amount_remaining"] = 0
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["voided_at"] = now
    emit(state, "invoice.voided", invoice)
    emit(state, "invoice.updated", invoice, changed(before, invoice))


def mark_uncollectible(state: SandboxState, invoice: Json, now: int) -> None:
    """open → uncollectible (no further payment attempts)."""
    if invoice["status"] != "open":
        raise invalid_request(
            f"You can only mark open invoices uncollectible. This invoice is {invoice['status']}.",
            code="invoice_not_open",
        )
    before = snapshot(invoice)
    invoice["status"] = "uncollectible"
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["marked_uncollectible_at"] = now
    emit(state, "invoice.marked_uncollectible", invoice)
    emit(state, "invoice.updated", invoice, changed(before, invoice))
