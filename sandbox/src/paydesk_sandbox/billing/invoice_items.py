"""``/v1/invoiceitems``: one-off amounts and prorations waiting for (or on) an invoice."""

from __future__ import annotations

from paydesk_sandbox.billing import discounts, invoicing, prices, shapes
from paydesk_sandbox.billing.common import amount, changed, currency, matches, snapshot
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.errors import invalid_request, parameter_missing
from paydesk_sandbox.listing import created_filter, paginate
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState

router = Router()


def _get_item(state: SandboxState, item_id: str) -> Json:
    return state.get("invoiceitem", item_id, label="invoiceitem")


@router.post(
    "/v1/invoiceitems",
    params=(
        "customer",
        "amount",
        "currency",
        "description",
        "discountable",
        "invoice",
        "metadata",
        "period",
        "pricing",
        "quantity",
        "subscription",
        "unit_amount_decimal",
        "discounts",
        "tax_behavior",
        "tax_code",
        "tax_rates",
    ),
)
def create_item(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    customer_id = p.required_string("customer")
    customer = state.get("customer", customer_id, label="customer", param="customer")
    now = state.now_for_customer(customer_id)
    quantity = p.integer("quantity", minimum=1) or 1
    pricing = p.sub("pricing")
    price_id = pricing.string("price") if pricing is not None else None
    if price_id is not None:
        price = prices.get_price(state, price_id, param="pricing[price]")
        total = price["unit_amount"] * quantity
        cur = price["currency"]
    else:
        value = amount(p, "amount")
        if value is None:
            decimal = p.string("unit_amount_decimal")
            if decimal is None or not decimal.isdigit():
                raise parameter_missing("amount")
            value = int(decimal) * quantity
        total = value
        cur = currency(p) or "usd"
    period = p.sub("period")
    start = period.integer("start") if period is not None else None
    end = period.integer("end") if period is not None else None
    subscription_id = p.string("subscription")
    if subscription_id is not None:
        state.get("subscription", subscription_id, label="subscription", param="subscription")
    obj = shapes.invoice_item(
        id=state.new_id("ii"),
        created=now,
        customer_id=customer_id,
        amount=total,
        currency=cur,
        description=p.string("description"),
        period=(start or now, end or now),
        proration=False,
        subscription_id=subscription_id,
        price_id=price_id,
        product_id=prices.product_of(state, price_id),
        quantity=quantity,
        metadata=p.metadata(),
        test_clock=customer.get("test_clock"),
    )
    if "discountable" in p:
        obj["discountable"] = bool(p.boolean("discountable"))
    # A new invoice item has no discount of its own yet, so none can be reused.
    specs = discounts.parse(
        state, p, customer_id=customer_id, currency=cur, amount_due=total, now=now,
        owner="invoice item",
    )  # fmt: skip
    obj["discounts"] = [
        discounts.create(state, spec, customer_id=customer_id, now=now, invoice_item_id=obj["id"])[
            "id"
        ]
        for spec in specs or []
    ]
    state.add(obj)
    invoice_id = p.string("invoice")
    if invoice_id is not None:
        invoice = invoicing.get_invoice(state, invoice_id, param="invoice")
        if invoice["status"] != "draft":
            raise invalid_request(
                "You can only add invoice items to draft invoices.", param="invoice"
            )
        invoicing.add_pending_items(state, invoice, subscription_id=subscription_id)
    emit(state, "invoiceitem.created", obj)
    return obj


@router.get("/v1/invoiceitems/{id}")
def retrieve_item(ctx: Ctx) -> Json:
    return _get_item(ctx.state, ctx.path["id"])


@router.post(
    "/v1/invoiceitems/{id}",
    params=("amount", "description", "discountable", "metadata", "period", "quantity"),
)
def update_item(ctx: Ctx) -> Json:
    state = ctx.state
    p = ctx.params
    item = _get_item(state, ctx.path["id"])
    if item["invoice"] is not None and set(p.data) - {"metadata", "expand"}:
        raise invalid_request(
            "This invoice item is already on an invoice and can no longer be changed.",
            code="invoice_not_editable",
        )
    before = snapshot(item)
    value = amount(p, "amount")
    if value is not None:
        item["amount"] = item["net_amount"] = value
    if "description" in p:
        item["description"] = p.string("description")
    if "quantity" in p:
        item["quantity"] = p.integer("quantity", minimum=1) or 1
        item["quantity_decimal"] = str(item["quantity"])
    item["metadata"] = p.metadata(item["metadata"])
    diff = changed(before, item)
    if diff:
        emit(state, "invoiceitem.updated", item, diff)
    return item


@router.delete("/v1/invoiceitems/{id}")
def delete_item(ctx: Ctx) -> Json:
    state = ctx.state
    item = _get_item(state, ctx.path["id"])
    if item["invoice"] is not None:
        raise invalid_request(
            "This invoice item is already on an invoice and can no longer be deleted.",
            code="invoice_not_editable",
        )
    del state.store("invoiceitem")[item["id"]]
    emit(state, "invoiceitem.deleted", item)
    return {"id": item["id"], "object": "invoiceitem", "deleted": True}


@router.list("/v1/invoiceitems", params=("customer", "invoice", "pending", "created"))
def list_items(ctx: Ctx) -> Json:
    p = ctx.params
    customer = p.string("customer")
    invoice = p.string("invoice")
    pending = p.boolean("pending")
    rows = (
        i
        for i in ctx.state.iter_newest_first("invoiceitem")
        if matches(i, "customer", customer)
        and matches(i, "invoice", invoice)
        and (pending is None or (i["invoice"] is None) == pending)
    )
    return paginate(ctx, created_filter(ctx, rows), "/v1/invoiceitems")
