"""``/v1/invoices`` and ``/v1/invoice_payments`` (invoice items: ``invoice_items``).

Invoices reach their subscription through ``parent.subscription_details`` and their
payments through the includable ``payments`` list (``expand[]=payments``); the
``confirmation_secret`` of a subscription's first invoice is includable too.
"""

from __future__ import annotations

from paydesk_sandbox.billing import discounts, invoicing, payments, poller, preview
from paydesk_sandbox.billing.common import changed, currency, matches, snapshot
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.billing.subscription_status import subscription_of
from paydesk_sandbox.errors import invalid_request, parameter_missing
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState

router = Router()

_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
_COLLECTION = ("charge_automatically", "send_invoice")
# Accepted and ignored: the sandbox has no tax, Connect, rendering or custom fields.
_IGNORED = (
    "account_tax_ids",
    "automatic_tax",
    "custom_fields",
    "default_tax_rates",
    "footer",
    "issuer",
    "on_behalf_of",
    "payment_settings",
    "rendering",
    "shipping_cost",
    "shipping_details",
    "statement_descriptor",
)


# ---- includable fields ----------------------------------------------------------
@router.expandable("invoice", "payments")
def _payments_of(state: SandboxState, invoice: Json) -> Json:
    rows = [r for r in state.store("invoice_payment").values() if r["invoice"] == invoice["id"]]
    return {
        "object": "list",
        "data": list(reversed(rows)),
        "has_more": False,
        "url": f"/v1/invoice_payments?invoice={invoice['id']}",
    }


@router.expandable("invoice", "confirmation_secret")
def _confirmation_secret(state: SandboxState, invoice: Json) -> Json | None:
    intent = invoicing.current_intent(state, invoice)
    if intent is None or invoice["status"] != "open":
        return None
    return {"client_secret": intent["client_secret"], "type": "payment_intent"}


# ---- payments confirmed by clients ----------------------------------------------
def _invoice_for_event(state: SandboxState, event: Json) -> tuple[Json, Json] | None:
    """The open invoice and live PaymentIntent of a payment_intent.* event, if billing's."""
    intent_id = event["data"]["object"]["id"]
    if state.private_of(intent_id).get("billing_attempt"):
        return None  # invoicing.attempt_payment handles its own outcome
    invoice_id = payments.invoice_of_intent(state, intent_id)
    invoice = state.store("invoice").get(invoice_id) if invoice_id else None
    if invoice is None or invoice["status"] != "open":
        return None
    return invoice, state.store("payment_intent")[intent_id]


@router.on("payment_intent.succeeded")
def _client_payment_succeeded(state: SandboxState, event: Json) -> None:
    """A client confirmed an invoice's PaymentIntent (``default_incomplete``, 3-D Secure)."""
    found = _invoice_for_event(state, event)
    if found is None:
        return
    invoice, intent = found
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    now = state.now_for_customer(invoice["customer"])
    invoicing.mark_paid(state, invoice, now, payment_intent=intent)


@router.on("payment_intent.payment_failed")
def _client_payment_failed(state: SandboxState, event: Json) -> None:
    """A client's confirmation of an invoice's PaymentIntent was declined."""
    found = _invoice_for_event(state, event)
    if found is None:
        return
    invoice, _intent = found
    before = snapshot(invoice)
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    invoicing.record_failure(state, invoice, state.now_for_customer(invoice["customer"]), before)


# ---- invoices -------------------------------------------------------------------
@router.post(
    "/v1/invoices",
    params=(
        "customer",
        "auto_advance",
        "collection_method",
        "currency",
        "days_until_due",
        "default_payment_method",
        "description",
        "due_date",
        "metadata",
        "pending_invoice_items_behavior",
        "subscription",
        "discounts",
        *_IGNORED,
    ),
)
def create(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    customer_id = p.required_string("customer")
    customer = state.get("customer", customer_id, label="customer", param="customer")
    now = state.now_for_customer(customer_id)
    include = p.enum("pending_invoice_items_behavior", ("exclude", "include")) or "exclude"
    subscription_id = p.string("subscription")
    subscription = None
    if subscription_id is not None:
        subscription = state.get(
            "subscription", subscription_id, label="subscription", param="subscription"
        )
    collection = p.enum("collection_method", _COLLECTION) or "charge_automatically"
    days = p.integer("days_until_due", minimum=0)
    if collection == "send_invoice" and days is None and p.integer("due_date") is None:
        raise invalid_request(
            "Invoices with `collection_method=send_invoice` need `days_until_due` or `due_date`.",
            param="days_until_due",
        )
    cur = currency(p, required=False)
    if cur is None:
        pending = [
            ii["currency"]
            for ii in state.store("invoiceitem").values()
            if ii["customer"] == customer_id and ii["invoice"] is None
        ]
        cur = pending[0] if pending else (customer.get("currency") or "usd")
    specs = discounts.parse(
        state, p, customer_id=customer_id, currency=cur, amount_due=None, now=now,
        owner="invoice", reusable=subscription["discounts"] if subscription else (),
    )  # fmt: skip
    invoice = invoicing.create_draft(
        state,
        customer_id=customer_id,
        currency=cur,
        billing_reason="manual",
        period=(now, now),
        now=now,
        subscription=subscription,
        params={
            "auto_advance": p.boolean("auto_advance", True),
            "collection_method": collection,
            "description": p.string("description"),
            "default_payment_method": p.string("default_payment_method"),
            "metadata": p.metadata(),
        },
    )
    if days is not None:
        state.private_of(invoice["id"])["days_until_due"] = days
    if specs is not None:
        _set_discounts(state, invoice, specs, now)
    if include == "include":
        invoicing.add_pending_items(state, invoice, subscription_id=subscription_id)
    if invoice["auto_advance"]:
        invoice["automatically_finalizes_at"] = now + invoicing.FINALIZE_DELAY
        if invoice["test_clock"] is None:
            poller.ensure_running(state)
    invoicing.announce(state, invoice)
    return invoice


@router.post(
    "/v1/invoices/create_preview",
    params=(
        "customer",
        "subscription",
        "subscription_details",
        "currency",
        "preview_mode",
        "invoice_items",
        "automatic_tax",
        "customer_details",
        "discounts",
        "issuer",
        "on_behalf_of",
    ),
)
def create_preview(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    subscription_id = p.string("subscription")
    subscription = None
    if subscription_id is not None:
        subscription = state.get(
            "subscription", subscription_id, label="subscription", param="subscription"
        )
    customer_id = p.string("customer") or (subscription["customer"] if subscription else None)
    if customer_id is None:
        raise parameter_missing("customer")
    return preview.build(state, customer_id, subscription, p)


@router.get("/v1/invoices/{id}")
def retrieve(ctx: Ctx) -> Json:
    return invoicing.get_invoice(ctx.state, ctx.path["id"])


@router.post(
    "/v1/invoices/{id}",
    params=(
        "auto_advance",
        "collection_method",
        "days_until_due",
        "default_payment_method",
        "description",
        "due_date",
        "metadata",
        "discounts",
        *_IGNORED,
    ),
)
def update(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    invoice = invoicing.get_invoice(state, ctx.path["id"])
    before = snapshot(invoice)
    draft_only = {"collection_method", "days_until_due", "due_date"} & set(p.data)
    if draft_only and invoice["status"] != "draft":
        raise invalid_request(
            f"You can only update `{sorted(draft_only)[0]}` on a draft invoice.",
            param=sorted(draft_only)[0],
            code="invoice_not_editable",
        )
    if invoice["status"] in ("paid", "void") and set(p.data) - {"metadata", "expand"}:
        raise invalid_request(
            f"This invoice is {invoice['status']}; only its metadata can be updated.",
            code="invoice_not_editable",
        )
    if "description" in p:
        invoice["description"] = p.string("description")
    if "auto_advance" in p:
        invoice["auto_advance"] = p.boolean("auto_advance", True)
    if "default_payment_method" in p:
        invoice["default_payment_method"] = p.string("default_payment_method")
    if "collection_method" in p:
        invoice["collection_method"] = p.enum("collection_method", _COLLECTION)
    if "days_until_due" in p:
        state.private_of(invoice["id"])["days_until_due"] = p.integer("days_until_due")
    if "discounts" in p:
        if invoice["status"] != "draft":
            raise invalid_request(
                "You can only update `discounts` on a draft invoice.",
                param="discounts",
                code="invoice_not_editable",
            )
        now = state.now_for_customer(invoice["customer"])
        specs = discounts.parse(
            state,
            p,
            customer_id=invoice["customer"],
            currency=invoice["currency"],
            amount_due=None,
            now=now,
            owner="invoice",
            reusable=[*invoice["discounts"], *_subscription_discounts(state, invoice)],
        )
        _set_discounts(state, invoice, specs or [], now)
    invoice["metadata"] = p.metadata(invoice["metadata"])
    diff = changed(before, invoice)
    if diff:
        emit(state, "invoice.updated", invoice, diff)
    return invoice


def _subscription_discounts(state: SandboxState, invoice: Json) -> list[str]:
    """The discounts of the invoice's subscription (an ancestor whose discounts the
    invoice may reuse)."""
    subscription = subscription_of(state, invoice)
    return list(subscription["discounts"]) if subscription else []


def _set_discounts(
    state: SandboxState, invoice: Json, specs: list[discounts.Spec], now: int
) -> None:
    """Replace a draft's discounts (new discount objects for these coupons)."""
    invoice["discounts"] = [
        discounts.create(
            state, spec, customer_id=invoice["customer"], now=now, invoice_id=invoice["id"]
        )["id"]
        for spec in specs
    ]
    invoicing.refresh_totals(state, invoice)


@router.delete("/v1/invoices/{id}")
def delete(ctx: Ctx) -> Json:
    state = ctx.state
    invoice = invoicing.get_invoice(state, ctx.path["id"])
    if invoice["status"] != "draft":
        raise invalid_request(
            "You can only delete draft invoices. Void or mark the invoice uncollectible instead.",
            code="invoice_not_editable",
        )
    for item in state.store("invoiceitem").values():
        if item["invoice"] == invoice["id"]:
            item["invoice"] = None  # back to pending, as in Stripe
    del state.store("invoice")[invoice["id"]]
    emit(state, "invoice.deleted", invoice)
    return {"id": invoice["id"], "object": "invoice", "deleted": True}


@router.list(
    "/v1/invoices",
    params=("customer", "subscription", "status", "collection_method", "created", "due_date"),
)
def list_invoices(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    customer = p.string("customer")
    subscription = p.string("subscription")
    status = p.enum("status", _STATUSES)
    collection = p.enum("collection_method", _COLLECTION)

    def owner(invoice: Json) -> str | None:
        parent = invoice["parent"]
        return parent["subscription_details"]["subscription"] if parent else None

    rows = (
        i
        for i in state.iter_newest_first("invoice")
        if matches(i, "customer", customer)
        and matches(i, "status", status)
        and matches(i, "collection_method", collection)
        and (subscription is None or owner(i) == subscription)
    )
    return paginate(ctx, created_filter(ctx, rows), "/v1/invoices")


@router.post("/v1/invoices/{id}/finalize", params=("auto_advance",))
def finalize(ctx: Ctx) -> Json:
    state = ctx.state
    invoice = invoicing.get_invoice(state, ctx.path["id"])
    if "auto_advance" in ctx.params:
        invoice["auto_advance"] = ctx.params.boolean("auto_advance", True)
    invoicing.finalize(state, invoice, state.now_for_customer(invoice["customer"]))
    return invoice


@router.post(
    "/v1/invoices/{id}/pay",
    params=("payment_method", "off_session", "paid_out_of_band", "forgive", "source", "mandate"),
)
def pay(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    invoice = invoicing.get_invoice(state, ctx.path["id"])
    now = state.now_for_customer(invoice["customer"])
    if invoice["status"] == "paid":
        raise invalid_request("Invoice is already paid", code="invoice_already_paid")
    if invoice["status"] == "void":
        raise invalid_request("This invoice has been voided and can no longer be paid.")
    if invoice["status"] == "draft":
        invoicing.finalize(state, invoice, now)
        if invoice["status"] == "paid":
            return invoice
    if p.boolean("paid_out_of_band"):
        invoicing.mark_paid(state, invoice, now, payment_intent=None)
        return invoice
    payment_method = p.string("payment_method") or p.string("source")
    if invoicing.payment_method_for(state, invoice, payment_method) is None:
        raise invalid_request(
            "This customer has no attached payment source or default payment method. Please "
            "consider adding a default payment method.",
            param="payment_method",
        )
    error = invoicing.attempt_payment(
        state,
        invoice,
        now,
        payment_method=payment_method,
        off_session=p.boolean("off_session", True) is not False,
    )
    if error is not None:
        raise error
    return invoice


@router.post("/v1/invoices/{id}/void")
def void(ctx: Ctx) -> Json:
    state = ctx.state
    invoice = invoicing.get_invoice(state, ctx.path["id"])
    invoicing.void(state, invoice, state.now_for_customer(invoice["customer"]))
    return invoice


@router.post("/v1/invoices/{id}/mark_uncollectible")
def mark_uncollectible(ctx: Ctx) -> Json:
    state = ctx.state
    invoice = invoicing.get_invoice(state, ctx.path["id"])
    invoicing.mark_uncollectible(state, invoice, state.now_for_customer(invoice["customer"]))
    return invoice


@router.list("/v1/invoices/{id}/lines")
def list_lines(ctx: Ctx) -> Json:
    invoice = invoicing.get_invoice(ctx.state, ctx.path["id"])
    return paginate(ctx, list(invoice["lines"]["data"]), f"/v1/invoices/{invoice['id']}/lines")


# ---- invoice payments -----------------------------------------------------------
@router.get("/v1/invoice_payments/{id}")
def retrieve_payment(ctx: Ctx) -> Json:
    return ctx.state.get("invoice_payment", ctx.path["id"], label="invoice payment")


@router.list("/v1/invoice_payments", params=("invoice", "payment", "status", "created"))
def list_payments(ctx: Ctx) -> Json:
    p = ctx.params
    invoice = p.string("invoice")
    status = p.enum("status", ("canceled", "open", "paid"))
    payment = p.sub("payment")
    intent = payment.string("payment_intent") if payment is not None else None
    rows = (
        r
        for r in ctx.state.iter_newest_first("invoice_payment")
        if matches(r, "invoice", invoice)
        and matches(r, "status", status)
        and (intent is None or r["payment"].get("payment_intent") == intent)
    )
    return paginate(ctx, created_filter(ctx, rows), "/v1/invoice_payments")
