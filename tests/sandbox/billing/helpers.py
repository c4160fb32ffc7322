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
