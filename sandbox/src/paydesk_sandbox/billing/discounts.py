"""Discounts: a coupon (possibly through a promotion code) applied to a subscription
or an invoice, and what it takes off an invoice.

- ``discounts[i][coupon|promotion_code|discount]`` on subscriptions and invoices is
  checked (limits, restrictions) before anything is stored, then each becomes a
  ``discount`` object (``di_…``; ``customer.discount.created``) and counts a
  redemption. ``discount`` reuses one already on the subscription (or, for an
  invoice, on it or its subscription): no new object, no redemption.
- A subscription's discounts apply to each of its invoices while they last: ``once``
  to the first only (then the discount ends: ``customer.discount.deleted``),
  ``repeating`` until ``end`` (``duration_in_months`` after ``start``), ``forever``.
- Amounts: each discount takes its share of every discountable positive line
  in order, each on what earlier discounts left (``percent_off`` rounded half up per
  line; ``amount_off`` — in the invoice's currency, from ``currency_options`` if it
  is not the coupon's — spread in proportion, the remainder on the last line), never
  more than the lines are worth, and only lines of ``applies_to[products]`` when the
  coupon names some. The invoice gets ``total_discount_amounts`` and each line
  ``discount_amounts``; ``total = subtotal - discounts``.
- Prorations: a price change prorates what :func:`period_discounts` leaves of a full
  period's charge. Under Stripe's default ``proration_discounts=included`` the
  proration lines list those discounts at 0 and are not discounted again; under
  ``itemized`` (flexible billing mode) they show the gross amount and the discounts'
  prorated amounts (:func:`apply`'s ``itemized``).
"""

from __future__ import annotations

from collections.abc import Collection

from paydesk_sandbox.billing import coupons, periods
from paydesk_sandbox.billing.common import changed, snapshot
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.params import Params
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState

router = Router()
# (coupon, promotion code, existing discount id to reuse or None)
Spec = tuple[Json, Json | None, str | None]


def parse(
    state: SandboxState,
    params: Params,
    *,
    customer_id: str,
    currency: str | None,
    amount_due: int | None,
    now: int,
    owner: str = "subscription",
    reusable: Collection[str] = (),
) -> list[Spec] | None:
    """The coupons (and promotion codes) of ``discounts[]``, validated, or None when the
    parameter is absent (``discounts=""`` clears: an empty list).

    ``discounts[i][discount]`` reuses an existing discount: only one already on the
    ``owner`` (``reusable``: the subscription's, or the invoice's and its
    subscription's); customers hold none at this API version.
    """
    if "discounts" not in params:
        return None
    raw = params.array("discounts") or []
    specs: list[Spec] = []
    for i, entry in enumerate(raw):
        sub = Params(entry if isinstance(entry, dict) else {}, f"discounts[{i}]")
        given = [k for k in ("coupon", "promotion_code", "discount") if sub.string(k)]
        if len(given) != 1:
            raise invalid_request(
                "Each discount must have exactly one of coupon, promotion_code or discount.",
                param=f"discounts[{i}]",
            )
        param = f"discounts[{i}][{given[0]}]"
        if given[0] == "discount":
            specs.append(_reused(state, sub.string("discount") or "", customer_id, owner,
                                 reusable, param))  # fmt: skip
            continue
        coupon, promo = coupons.redeemable(
            state,
            coupon_id=sub.string("coupon"),
            promotion_code_id=sub.string("promotion_code"),
            customer_id=customer_id,
            amount_due=amount_due,
            currency_code=currency,
            now=now,
            param=param,
        )
        specs.append((coupon, promo, None))
    coupon_ids = [c["id"] for c, _, _ in specs]
    if len(set(coupon_ids)) != len(coupon_ids):
        raise invalid_request("The same coupon cannot be applied twice.", param="discounts")
    return specs


def _reused(
    state: SandboxState,
    discount_id: str,
    customer_id: str,
    owner: str,
    reusable: Collection[str],
    param: str,
) -> Spec:
    """An existing discount given again: Stripe's refusal names the owner's customer."""
    discount = state.get("discount", discount_id, label="discount", param=param)
    if discount_id not in reusable or discount["customer"] != customer_id:
        article = "an" if owner[0] in "aeiou" else "a"
        raise invalid_request(
            f"The discount {discount_id} is not the current discount on the {owner}'s "
            f"customer {customer_id}. Discounts can only be applied to {article} {owner} when "
            f"they are the current customer discount or already exist on the {owner}.",
            param=param,
        )
    return (coupon_of(state, discount), None, discount_id)


def create(
    state: SandboxState,
    spec: Spec,
    *,
    customer_id: str,
    now: int,
    subscription_id: str | None = None,
    invoice_id: str | None = None,
    invoice_item_id: str | None = None,
    subscription_item_id: str | None = None,
) -> Json:
    """Store a discount for ``spec``, count the redemption, emit
    ``customer.discount.created``; a reused discount is returned as it is."""
    coupon, promo, reused = spec
    if reused is not None:
        return dict(state.store("discount")[reused])
    end = None
    if coupon["duration"] == "repeating":
        end = periods.boundary(now, "month", 1, int(coupon["duration_in_months"]))
    discount: Json = {
        "id": state.new_id("di"),
        "object": "discount",
        "checkout_session": None,
        "customer": customer_id,
        "customer_account": None,
        "end": end,
        "invoice": invoice_id,
        "invoice_item": invoice_item_id,
        "promotion_code": promo["id"] if promo else None,
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": now,
        "subscription": subscription_id,
        "subscription_item": subscription_item_id,
    }
    state.add(discount)
    coupons.redeem(coupon, promo, now)
    emit(state, "customer.discount.created", discount)
    return discount


def coupon_of(state: SandboxState, discount: Json) -> Json:
    """The discount's coupon, even if the coupon was deleted since."""
    coupon_id = discount["source"]["coupon"]
    found = state.store("coupon").get(coupon_id)
    return found or state.private_of(coupon_id)["deleted"]


def end(state: SandboxState, discount_id: str, now: int) -> None:
    """The discount is over: off its subscription (or item), ``customer.discount.deleted``."""
    discount = state.store("discount").get(discount_id)
    if discount is None:
        return
    subscription = state.store("subscription").get(discount["subscription"] or "")
    if subscription is None:
        emit(state, "customer.discount.deleted", discount)
        return
    before = snapshot(subscription)
    subscription["discounts"] = [d for d in subscription["discounts"] if d != discount_id]
    for item in subscription["items"]["data"]:
        item["discounts"] = [d for d in item.get("discounts") or [] if d != discount_id]
    emit(state, "customer.discount.deleted", discount)
    diff = changed(before, subscription)
    if diff:
        emit(state, "customer.subscription.updated", subscription, diff)


def for_new_invoice(state: SandboxState, subscription: Json | None, now: int) -> list[str]:
    """The subscription's discounts that apply to an invoice drafted ``now``; those
    whose ``end`` has passed end first."""
    if subscription is None:
        return []
    active = []
    for discount_id in list(subscription["discounts"]):
        discount = state.store("discount").get(discount_id)
        if discount is None:
            continue
        if discount["end"] is not None and discount["end"] <= now:
            end(state, discount_id, now)
        else:
            active.append(discount_id)
    return active


def after_finalize(state: SandboxState, invoice: Json, now: int) -> None:
    """``once`` discounts of a subscription (or of one of its items) end with the first
    invoice they reduce."""
    used = list(invoice["discounts"])
    for line in invoice["lines"]["data"]:
        used.extend(d for d in line.get("discounts") or [] if d not in used)
    for discount_id in used:
        discount = state.store("discount").get(discount_id)
        if discount is None or discount["subscription"] is None:
            continue
        if coupon_of(state, discount)["duration"] == "once":
            end(state, discount_id, now)


def apply(state: SandboxState, invoice: Json, itemized: dict[str, list[Json]] | None = None) -> int:
    """Set ``discount_amounts`` on the lines and ``total_discount_amounts`` on the
    invoice: first each line's own discounts (from its invoice item), then the
    invoice's ``discounts`` over all discountable lines; returns the total taken off.

    ``itemized`` (line id → discount amounts) are prorations whose discounts were
    worked out when they were created (``proration_discounts=itemized``); lines of
    such invoice items find theirs without it.
    """
    fixed = dict(itemized or {})
    for line in invoice["lines"]["data"]:
        details = (line.get("parent") or {}).get("invoice_item_details") or {}
        item_id = details.get("invoice_item")
        parts = state.private_of(item_id).get("itemized_discounts") if item_id else None
        if parts:
            fixed[line["id"]] = parts
    taken = distribute(
        state, invoice["created"], invoice["currency"], invoice["lines"]["data"],
        invoice["discounts"], fixed,
    )  # fmt: skip
    invoice["total_discount_amounts"] = [
        {"amount": amount, "discount": discount_id} for discount_id, amount in taken.items()
    ]
    return sum(taken.values())


def distribute(
    state: SandboxState,
    now: int,
    currency: str,
    lines: list[Json],
    invoice_discounts: list[str],
    fixed: dict[str, list[Json]] | None = None,
) -> dict[str, int]:
    """Fill each line's ``discount_amounts``; returns what each discount takes in all.

    A line that is not discountable (a proration) lists its discounts at 0: their
    effect is already in its amount (Stripe's default ``proration_discounts=included``)
    — or at the ``fixed`` amounts given for it (``itemized``).
    """
    for line in lines:
        line["discount_amounts"] = []
    eligible = [line for line in lines if line.get("discountable", True) and line["amount"] > 0]
    remaining = {line["id"]: line["amount"] for line in eligible}
    taken: dict[str, int] = {}
    for line in lines:
        if line["id"] not in remaining:
            parts = (fixed or {}).get(line["id"])
            if parts is None:
                parts = [{"amount": 0, "discount": d} for d in line.get("discounts") or []]
            for part in parts:
                line["discount_amounts"].append(dict(part))
                taken[part["discount"]] = taken.get(part["discount"], 0) + part["amount"]
            continue
        for discount_id in line.get("discounts") or []:
            _take(state, now, currency, discount_id, [line], remaining, taken)
    for discount_id in invoice_discounts:
        _take(state, now, currency, discount_id, eligible, remaining, taken)
    return taken


def period_discounts(
    state: SandboxState, subscription: Json, items: list[Json], at: int
) -> dict[str, list[tuple[str, int]]]:
    """What each of ``items`` would get off a full period's charge at ``at``: its own
    discounts, then the subscription's, shared as on an invoice. Keyed by
    :func:`item_key`; prorations take these off before prorating by time."""
    lines: list[Json] = [
        {
            "id": item_key(item),
            "amount": item["price"]["unit_amount"] * item["quantity"],
            "discounts": list(item.get("discounts") or []),
            "pricing": {"price_details": {"product": item["price"]["product"]}},
        }
        for item in items
    ]
    distribute(state, at, subscription["currency"], lines, list(subscription["discounts"]))
    return {
        line["id"]: [(d["discount"], d["amount"]) for d in line["discount_amounts"] if d["amount"]]
        for line in lines
    }


def item_key(item: Json) -> str:
    """A subscription item's id, or (for a preview's not yet created item) its identity."""
    return str(item["id"] or f"new_{id(item)}")


def _take(
    state: SandboxState,
    now: int,
    currency: str,
    discount_id: str,
    lines: list[Json],
    remaining: dict[str, int],
    taken: dict[str, int],
) -> None:
    discount = state.store("discount").get(discount_id)
    if discount is None or (discount["end"] is not None and discount["end"] <= now):
        return
    coupon = coupon_of(state, discount)
    products = (state.private_of(coupon["id"]).get("applies_to") or {}).get("products") or []
    # applies_to[products]: only the lines of those products are discounted.
    targets = [line for line in lines if not products or _product(line) in products]
    shares = _shares(coupon, amount_off_in(state, coupon, currency), targets, remaining)
    for line in targets:
        off = shares.get(line["id"], 0)
        remaining[line["id"]] -= off
        line["discount_amounts"].append({"amount": off, "discount": discount_id})
    taken[discount_id] = taken.get(discount_id, 0) + sum(shares.values())


def _product(line: Json) -> str | None:
    details = (line.get("pricing") or {}).get("price_details") or {}
    product = details.get("product")
    return str(product) if product else None


def amount_off_in(state: SandboxState, coupon: Json, currency: str | None) -> int | None:
    """An amount-off coupon's amount in ``currency``: its own, or its
    ``currency_options`` one; None when it has none in that currency."""
    if coupon["amount_off"] is None:
        return None
    if currency is None or currency == coupon["currency"]:
        return int(coupon["amount_off"])
    options = state.private_of(coupon["id"]).get("currency_options") or {}
    option = options.get(currency)
    return int(option["amount_off"]) if option else None


def _shares(
    coupon: Json, amount_off: int | None, lines: list[Json], remaining: dict[str, int]
) -> dict[str, int]:
    if coupon["percent_off"] is not None:
        pct = coupon["percent_off"]
        # Half up, in integer arithmetic on hundredths of a percent.
        return {
            line["id"]: (remaining[line["id"]] * round(pct * 100) + 5_000) // 10_000
            for line in lines
        }
    if amount_off is None or not lines:
        return {}
    budget = min(amount_off, sum(remaining[line["id"]] for line in lines))
    base = sum(remaining[line["id"]] for line in lines)
    shares: dict[str, int] = {}
    given = 0
    for i, line in enumerate(lines):
        if i == len(lines) - 1:
            share = budget - given
        else:
            share = budget * remaining[line["id"]] // base if base else 0
        shares[line["id"]] = min(share, remaining[line["id"]])
        given += shares[line["id"]]
    return shares


def _deleted(discount: Json) -> Json:
    """The ``deleted_discount`` answer: the discount's fields plus ``deleted``."""
    out = {k: v for k, v in discount.items() if k != "end"}
    out["deleted"] = True
    return out


@router.delete("/v1/subscriptions/{id}/discount")
def delete_subscription_discount(ctx: Ctx) -> Json:
    """Remove the subscription's discounts (``customer.discount.deleted`` each)."""
    subscription = ctx.state.get("subscription", ctx.path["id"], label="subscription")
    current = [
        d for d in (ctx.state.store("discount").get(i) for i in subscription["discounts"]) if d
    ]
    if not current:
        raise invalid_request("This subscription has no discount to delete.")
    for discount in current:
        end(ctx.state, discount["id"], ctx.now)
    return _deleted(current[-1])


@router.delete("/v1/customers/{id}/discount")
def delete_customer_discount(ctx: Ctx) -> Json:
    """Customers carry no discount of their own at this API version (discounts live on
    subscriptions and invoices), so there is never one to delete."""
    ctx.state.get("customer", ctx.path["id"], label="customer")
    raise invalid_request("This customer has no discount to delete.")
