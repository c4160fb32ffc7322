"""Small builders shared by the billing SDK tests (imported via conftest fixtures)."""

from __future__ import annotations

import stripe


def customer_with_card(
    client: stripe.StripeClient, card: str = "pm_card_visa", clock: str | None = None
) -> stripe.Customer:
    """A customer whose default payment method is the test card ``card``."""
    params: dict[str, object] = {
        "email": "jo@example.com",
        "payment_method": card,
        "invoice_settings": {"default_payment_method": card},
    }
    if clock is not None:
        params["test_clock"] = clock
    return client.v1.customers.create(params=params)  # type: ignore[arg-type]


def monthly_price(client: stripe.StripeClient, amount: int, name: str = "Premium") -> stripe.Price:
    """A monthly USD price on a new product."""
    return client.v1.prices.create(
        params={
            "product_data": {"name": name},
            "unit_amount": amount,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )


def at(year: int, month: int, day: int, hour: int = 0) -> int:
    """Unix seconds of a UTC moment."""
    from datetime import UTC, datetime

    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp())


def clocked_subscription(
    client: stripe.StripeClient,
    amount: int = 999,
    card: str = "pm_card_visa",
    start: int | None = None,
) -> tuple[stripe.test_helpers.TestClock, stripe.Customer, stripe.Subscription]:
    """A test clock frozen at ``start`` (default 2026-01-01), a customer with ``card`` on
    it and a monthly subscription of ``amount`` created at that moment."""
    clock = client.v1.test_helpers.test_clocks.create(
        params={"frozen_time": start if start is not None else at(2026, 1, 1)}
    )
    customer = customer_with_card(client, card, clock=clock.id)
    price = monthly_price(client, amount)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    return clock, customer, sub


def advance(client: stripe.StripeClient, clock_id: str, to: int) -> None:
    """Advance the clock and wait until it is ready again, as Stripe clients poll."""
    client.v1.test_helpers.test_clocks.advance(clock_id, params={"frozen_time": to})
    for _ in range(100):
        if client.v1.test_helpers.test_clocks.retrieve(clock_id).status == "ready":
            return
    raise AssertionError("the test clock never became ready")
