"""A discounted subscription's price changes: the subscription's discounts are in the
proration amounts (Stripe's default ``proration_discounts=included``: the lines list
the discounts at 0 and are not discountable again), in the upcoming preview and in the
invoices that carry them (official SDK over real HTTP; amounts worked out by hand)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from helpers import advance, at, customer_with_card, monthly_price


def _subscribe(
    client: stripe.StripeClient, prices: list[stripe.Price], coupon: str
) -> tuple[str, stripe.Customer, stripe.Subscription]:
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": at(2026, 1, 1)})
    customer = customer_with_card(client, clock=clock.id)
    sub = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": p.id} for p in prices],
            "discounts": [{"coupon": coupon}],
        }
    )
    return clock.id, customer, sub


def _prorations(invoice: stripe.Invoice) -> list[tuple[int, bool, list[Any], list[Any]]]:
    return [
        (
            line.amount,
            line.discountable,
            list(line.discounts or []),
            [(a.amount, a.discount) for a in line.discount_amounts or []],
        )
        for line in invoice.lines.data
        if (line.parent.invoice_item_details or line.parent.subscription_item_details).proration  # type: ignore[union-attr]
    ]


def test_percent_off_upgrade_prorates_the_discounted_amounts(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"percent_off": 50, "duration": "forever"})
    cheap, dear = monthly_price(client, 1000), monthly_price(client, 2000, "Enterprise")
    clock, customer, sub = _subscribe(client, [cheap], coupon.id)
    discount = sub.discounts[0]
    advance(client, clock, at(2026, 1, 17))  # 15 of 31 days remain in January
    change = {"items": [{"id": sub["items"].data[0].id, "price": dear.id}]}
    preview = client.v1.invoices.create_preview(
        {
            "customer": customer.id,
            "subscription": sub.id,
            "subscription_details": {**change, "proration_behavior": "always_invoice"},  # type: ignore[typeddict-item]
        }
    )
    client.v1.subscriptions.update(sub.id, {**change, "proration_behavior": "always_invoice"})  # type: ignore[arg-type]
    invoice = client.v1.invoices.retrieve(
        client.v1.subscriptions.retrieve(sub.id).latest_invoice  # type: ignore[arg-type]
    )
    # Unused time on 10.00 at 50 % off: 500 x 15/31 = 241.9 -> -242; remaining time
    # on 20.00 at 50 % off: 1000 x 15/31 = 483.9 -> 484. Each lists the discount at 0.
    expected = [
        (-242, False, [discount], [(0, discount)]),
        (484, False, [discount], [(0, discount)]),
    ]
    for bill in (preview, invoice):
        assert _prorations(bill) == expected
        assert (bill.subtotal, bill.total, bill.amount_due) == (242, 242, 242)
        assert [(a.amount, a.discount) for a in bill.total_discount_amounts or []] == [
            (0, discount)
        ]
    assert invoice.billing_reason == "subscription_update"
    assert (invoice.status, invoice.amount_paid) == ("paid", 242)
    items = client.v1.invoice_items.list({"invoice": invoice.id}).data
    assert sorted((i.amount, i.discountable, list(i.discounts or [])) for i in items) == [
        (-242, False, [discount]),
        (484, False, [discount]),
    ]


def test_pending_discounted_prorations_reach_the_renewal(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"percent_off": 25, "duration": "forever"})
    cheap, dear = monthly_price(client, 1200), monthly_price(client, 2400, "Enterprise")
    clock, customer, sub = _subscribe(client, [cheap], coupon.id)
    discount = sub.discounts[0]
    advance(client, clock, at(2026, 1, 17))
    client.v1.subscriptions.update(
        sub.id, {"items": [{"id": sub["items"].data[0].id, "price": dear.id}]}
    )
    # 25 % off: unused 900 x 15/31 = 435.48 -> -435; remaining 1800 x 15/31 = 870.97 -> 871.
    upcoming = client.v1.invoices.create_preview({"customer": customer.id, "subscription": sub.id})
    expected = [
        (-435, False, [discount], [(0, discount)]),
        (871, False, [discount], [(0, discount)]),
    ]
    # Renewal: 2400 less 25 % (600) on the cycle line, plus the prorations as they are.
    assert _prorations(upcoming) == expected
    assert (upcoming.subtotal, upcoming.total) == (2836, 2236)
    assert [(a.amount, a.discount) for a in upcoming.total_discount_amounts or []] == [
        (600, discount)
    ]
    advance(client, clock, at(2026, 2, 1, 2))
    renewal = client.v1.invoices.list({"subscription": sub.id, "limit": 1}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    assert _prorations(renewal) == expected
    assert (renewal.subtotal, renewal.total, renewal.amount_paid) == (2836, 2236, 2236)
    assert [(a.amount, a.discount) for a in renewal.total_discount_amounts or []] == [
        (600, discount)
    ]


def test_amount_off_is_shared_between_items_before_prorating(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create({"amount_off": 800, "currency": "usd", "duration": "forever"})
    small, big = monthly_price(client, 1000, "Seats"), monthly_price(client, 3000, "Storage")
    larger = monthly_price(client, 2000, "Seats+")
    clock, customer, sub = _subscribe(client, [small, big], coupon.id)
    first = client.v1.invoices.retrieve(sub.latest_invoice)  # type: ignore[arg-type]
    # 800 off 4000, in proportion: 200 on the 1000 line, 600 on the 3000 line.
    assert [[a.amount for a in line.discount_amounts or []] for line in first.lines.data] == [
        [200],
        [600],
    ]
    assert first.total == 3200
    advance(client, clock, at(2026, 1, 17))
    seats = next(i for i in sub["items"].data if i.price.id == small.id)
    preview = client.v1.invoices.create_preview(
        {
            "customer": customer.id,
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": seats.id, "price": larger.id}],
                "proration_behavior": "always_invoice",
            },
        }
    )
    # Before: 1000 - 200 = 800 a month -> unused 800 x 15/31 = 387.1 -> -387.
    # After: 800 off 5000 gives the 2000 line 320 -> 1680 x 15/31 = 812.9 -> 813.
    assert [line[0] for line in _prorations(preview)] == [-387, 813]
    assert (preview.subtotal, preview.total) == (426, 426)


def test_cancel_with_prorate_credits_the_discounted_unused_time(
    client: stripe.StripeClient,
) -> None:
    coupon = client.v1.coupons.create({"percent_off": 40, "duration": "forever"})
    price = monthly_price(client, 3100)
    clock, customer, sub = _subscribe(client, [price], coupon.id)
    advance(client, clock, at(2026, 1, 11))  # 21 of 31 days remain
    client.v1.subscriptions.cancel(sub.id, {"prorate": True})
    credits = client.v1.invoice_items.list({"customer": customer.id, "pending": True}).data
    # 3100 less 40 % = 1860 a month -> 1860 x 21/31 = 1260 back.
    assert [(i.amount, list(i.discounts or [])) for i in credits] == [(-1260, [sub.discounts[0]])]


def test_itemized_proration_discounts_show_gross_amounts_and_the_discounts(
    client: stripe.StripeClient,
) -> None:
    """``billing_mode[flexible][proration_discounts]=itemized``: the same money, shown
    as gross proration amounts with their discount amounts (negative on a credit)."""
    coupon = client.v1.coupons.create({"percent_off": 50, "duration": "forever"})
    cheap, dear = monthly_price(client, 1000), monthly_price(client, 2000, "Enterprise")
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": at(2026, 1, 1)})
    customer = customer_with_card(client, clock=clock.id)
    sub = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": cheap.id}],
            "discounts": [{"coupon": coupon.id}],
            "billing_mode": {"type": "flexible", "flexible": {"proration_discounts": "itemized"}},
        }
    )
    assert sub.billing_mode.to_dict() == {
        "type": "flexible",
        "flexible": {"proration_discounts": "itemized"},
    }
    discount = sub.discounts[0]
    advance(client, clock.id, at(2026, 1, 17))
    change = {"items": [{"id": sub["items"].data[0].id, "price": dear.id}]}
    preview = client.v1.invoices.create_preview(
        {
            "customer": customer.id,
            "subscription": sub.id,
            "subscription_details": {**change, "proration_behavior": "always_invoice"},  # type: ignore[typeddict-item]
        }
    )
    client.v1.subscriptions.update(sub.id, {**change, "proration_behavior": "always_invoice"})  # type: ignore[arg-type]
    invoice = client.v1.invoices.retrieve(
        client.v1.subscriptions.retrieve(sub.id).latest_invoice  # type: ignore[arg-type]
    )
    # Unused: 1000 x 15/31 = 483.9 -> -484 gross, 500 x 15/31 -> -242 net, so -242 off;
    # remaining: 2000 x 15/31 = 967.7 -> 968 gross, 484 net, 484 off.
    expected = [
        (-484, False, [discount], [(-242, discount)]),
        (968, False, [discount], [(484, discount)]),
    ]
    for bill in (preview, invoice):
        assert _prorations(bill) == expected
        assert (bill.subtotal, bill.total, bill.amount_due) == (484, 242, 242)
        assert [(a.amount, a.discount) for a in bill.total_discount_amounts or []] == [
            (242, discount)
        ]
    items = client.v1.invoice_items.list({"invoice": invoice.id}).data
    assert sorted(
        (
            i.amount,
            i.net_amount,
            [(a.amount, a.discount) for a in i.proration_details.discount_amounts],
        )  # type: ignore[union-attr]
        for i in items
    ) == [(-484, -242, [(-242, discount)]), (968, 484, [(484, discount)])]


def test_billing_mode_validation(client: stripe.StripeClient) -> None:
    customer = customer_with_card(client)
    price = monthly_price(client, 1000)
    for mode, param in (
        (
            {"type": "classic", "flexible": {"proration_discounts": "itemized"}},
            "billing_mode[flexible]",
        ),
        (
            {"type": "flexible", "flexible": {"proration_discounts": "gross"}},
            "billing_mode[flexible][proration_discounts]",
        ),
        ({"type": "modern"}, "billing_mode[type]"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.subscriptions.create(
                {"customer": customer.id, "items": [{"price": price.id}], "billing_mode": mode}  # type: ignore[typeddict-item]
            )
        assert (err.value.http_status, err.value.param) == (400, param)
    assert client.v1.subscriptions.list({"customer": customer.id}).data == []
