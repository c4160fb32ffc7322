"""``POST /v1/invoices/create_preview``: the invoice a change would produce, stored nowhere.

Without ``subscription_details`` it is the subscription's next renewal (pending
prorations included); with ``subscription_details[items]`` it applies the price or
quantity changes on copies: ``always_invoice`` previews the proration invoice that
would be charged at once, other behaviors the renewal that would carry them.
"""

from __future__ import annotations

from dataclasses import dataclass

from paydesk_sandbox.billing import (
    discounts,
    invoicing,
    lifecycle,
    periods,
    prices,
    proration,
    shapes,
    totals,
)
from paydesk_sandbox.errors import StripeError, invalid_request
from paydesk_sandbox.params import Params
from paydesk_sandbox.state import Json, SandboxState, clone


@dataclass(frozen=True)
class _Line:
    amount: int
    description: str | None
    period: tuple[int, int]
    quantity: int
    price_id: str | None
    subscription_item_id: str | None
    invoice_item_id: str | None
    proration: bool
    discountable: bool = True
    discounts: tuple[str, ...] = ()
    itemized: tuple[tuple[str, int], ...] | None = None  # proration_discounts=itemized


def no_upcoming(customer_id: str) -> StripeError:
    """404 ``invoice_upcoming_none``."""
    return StripeError(
        404,
        "invalid_request_error",
        f"No upcoming invoices for customer: {customer_id}",
        code="invoice_upcoming_none",
    )


def _pending_lines(
    state: SandboxState, customer_id: str, subscription_id: str | None
) -> list[_Line]:
    lines = []
    for item in state.store("invoiceitem").values():
        if item["invoice"] is not None or item["customer"] != customer_id:
            continue
        parent = item["parent"]
        owner = parent["subscription_details"]["subscription"] if parent else None
        if owner != subscription_id:
            continue
        lines.append(
            _Line(
                amount=item["amount"],
                description=item["description"],
                period=(item["period"]["start"], item["period"]["end"]),
                quantity=item["quantity"],
                price_id=(item["pricing"].get("price_details") or {}).get("price"),
                subscription_item_id=None,
                invoice_item_id=item["id"],
                proration=item["proration"],
                discountable=item["discountable"],
                discounts=tuple(item["discounts"]),
            )
        )
    return lines


def _apply_changes(
    state: SandboxState, subscription: Json, details: Params, at: int, behavior: str
) -> tuple[list[Json], list[_Line]]:
    """The items after ``details[items]`` (copies) and the prorations they would cause."""
    items = [clone(item) for item in subscription["items"]["data"]]
    by_id = {item["id"]: item for item in items}
    start, end = lifecycle.current_period(subscription)
    before = discounts.period_discounts(state, subscription, items, at)
    changes: list[tuple[Json | None, Json | None]] = []
    for index, raw in enumerate(details.array("items") or []):
        if not isinstance(raw, dict):
            raise invalid_request("Invalid object", param=f"{details.name('items')}[{index}]")
        spec = Params(raw, f"{details.name('items')}[{index}]")
        item_id = spec.string("id")
        item = by_id.get(item_id) if item_id else None
        if item_id is not None and item is None:
            raise invalid_request(f"Invalid subscription_item id: {item_id}", param=spec.name("id"))
        old = clone(item) if item is not None else None
        if spec.boolean("deleted"):
            if item is not None:
                items.remove(item)
            new = None
        else:
            if item is None:
                price = prices.get_price(
                    state, spec.required_string("price"), param=spec.name("price")
                )
                item = {"id": None, "price": price, "quantity": 1, "current_period_start": start,
                        "current_period_end": end}  # fmt: skip
                items.append(item)
            elif spec.string("price") is not None:
                item["price"] = prices.get_price(
                    state, spec.required_string("price"), param=spec.name("price")
                )
            if "quantity" in spec:
                item["quantity"] = spec.integer("quantity", minimum=0) or 0
            new = item
        changes.append((old, new))
    lines: list[_Line] = []
    if behavior == "none" or subscription["status"] == "trialing":
        return items, lines
    after = discounts.period_discounts(state, subscription, items, at)
    itemized = lifecycle.itemized(subscription)
    day = invoicing.day_label(at)
    for old, new in changes:
        for who, offs, label, sign in (
            (old, before, "Unused", -1),
            (new, after, "Remaining", 1),
        ):
            if who is None:
                continue
            full = who["price"]["unit_amount"] * who["quantity"]
            share = proration.discounted_share(
                full, offs.get(discounts.item_key(who), []), start, end, at
            )
            amount = sign * lifecycle.proration_amount(subscription, share)
            if not amount:
                continue
            name = invoicing.price_label(state, who["price"]).split(" (at")[0]
            parts = tuple((d, sign * a) for d, a in share.discounts)
            lines.append(
                _Line(amount, f"{label} time on {who['quantity']} × {name} after {day}",
                      (at, end), who["quantity"], who["price"]["id"], who["id"], None, True,
                      False, tuple(d for d, _ in parts), parts if itemized else None)
            )  # fmt: skip
    return items, lines


def build(state: SandboxState, customer_id: str, subscription: Json | None, p: Params) -> Json:
    """The preview invoice for the request parameters ``p``."""
    customer = state.get("customer", customer_id, label="customer", param="customer")
    now = state.now_for_customer(customer_id)
    if subscription is None:
        lines = _pending_lines(state, customer_id, None)
        if not lines:
            raise no_upcoming(customer_id)
        return _invoice(state, customer, None, "manual", (now, now), now, lines)
    if subscription["status"] in lifecycle.ENDED:
        raise no_upcoming(customer_id)
    details = p.sub("subscription_details") or Params({}, "subscription_details")
    behavior = (
        details.enum("proration_behavior", ("create_prorations", "none", "always_invoice"))
        or "create_prorations"
    )
    at = details.integer("proration_date") or now
    items, prorations = _apply_changes(state, subscription, details, at, behavior)
    if not items:
        raise invalid_request("A subscription must have at least one item.", param="items")
    cancels = details.boolean("cancel_at_period_end", subscription["cancel_at_period_end"])
    pending = _pending_lines(state, customer_id, subscription["id"])
    if behavior == "always_invoice" and prorations:
        return _invoice(
            state, customer, subscription, "subscription_update", (now, now), now,
            pending + prorations,
        )  # fmt: skip
    if cancels or subscription["status"] == "paused":
        raise no_upcoming(customer_id)
    start, end = lifecycle.current_period(subscription)
    interval, count = lifecycle.billing_interval(subscription)
    cycle = int(state.private_of(subscription["id"]).get("cycle", 0)) + 1
    next_end = periods.boundary(subscription["billing_cycle_anchor"], interval, count, cycle + 1)
    cycle_lines = [
        _Line(
            amount=item["price"]["unit_amount"] * item["quantity"],
            description=f"{item['quantity']} × {invoicing.price_label(state, item['price'])}",
            period=(end, next_end),
            quantity=item["quantity"],
            price_id=item["price"]["id"],
            subscription_item_id=item["id"],
            invoice_item_id=None,
            proration=False,
            discounts=tuple(item.get("discounts") or []),
        )
        for item in items
    ]
    return _invoice(
        state, customer, subscription, "subscription_cycle", (start, end), end,
        cycle_lines + pending + prorations,
    )  # fmt: skip


def _invoice(
    state: SandboxState,
    customer: Json,
    subscription: Json | None,
    reason: str,
    period: tuple[int, int],
    created: int,
    lines: list[_Line],
) -> Json:
    invoice_id = state.new_id("upcoming_in")
    currency = subscription["currency"] if subscription else "usd"
    if subscription is None and lines:
        pending = state.store("invoiceitem").get(lines[0].invoice_item_id or "")
        currency = pending["currency"] if pending else currency
    invoice = shapes.invoice(
        id=invoice_id,
        created=created,
        customer=customer,
        currency=currency,
        billing_reason=reason,
        period=period,
        subscription_id=subscription["id"] if subscription else None,
        subscription_metadata=dict(subscription["metadata"]) if subscription else None,
        params={},
        test_clock=customer.get("test_clock"),
    )
    itemized: dict[str, list[Json]] = {}
    for line in lines:
        invoice["lines"]["data"].append(
            shapes.line_item(
                id=state.new_id("il_tmp"),
                invoice_id=invoice_id,
                amount=line.amount,
                currency=currency,
                description=line.description,
                period=line.period,
                quantity=line.quantity,
                price_id=line.price_id,
                product_id=prices.product_of(state, line.price_id),
                subscription_id=subscription["id"] if subscription else None,
                subscription_item_id=line.subscription_item_id,
                invoice_item_id=line.invoice_item_id,
                proration=line.proration,
                metadata={},
            )
        )
        built = invoice["lines"]["data"][-1]
        built["discountable"] = line.discountable
        built["discounts"] = list(line.discounts)
        if line.itemized is not None:
            itemized[built["id"]] = [{"amount": a, "discount": d} for d, a in line.itemized]
    if subscription is not None:
        # The discounts the next invoice would carry (read only: nothing ends here).
        invoice["discounts"] = [
            d["id"]
            for d in (state.store("discount").get(i) for i in subscription["discounts"])
            if d is not None and (d["end"] is None or d["end"] > created)
        ]
    off = discounts.apply(state, invoice, itemized)
    balance = int(customer.get("balance") or 0)
    result = totals.compute((line.amount for line in lines), balance, off)
    invoice.update(
        subtotal=result.subtotal,
        subtotal_excluding_tax=result.subtotal,
        total=result.total,
        total_excluding_tax=result.total,
        amount_due=result.amount_due,
        amount_remaining=result.amount_due,
        starting_balance=result.starting_balance,
        ending_balance=result.ending_balance,
    )
    return invoice
