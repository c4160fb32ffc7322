"""Invoice totals assembled from line amounts and the customer's credit balance.

A customer balance is negative when the customer holds credit (Stripe's sign
convention). Credit is applied before charging; a negative invoice total is not
refunded but added to the balance, which is how downgrade prorations come back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class InvoiceTotals:
    """Every amount field of an invoice, in minor units of its currency."""

    subtotal: int
    total: int
    starting_balance: int
    ending_balance: int
    amount_due: int

    @property
    def balance_applied(self) -> int:
        """How much the customer's balance changed by finalizing this invoice."""
        return self.ending_balance - self.starting_balance


def compute(line_amounts: Iterable[int], customer_balance: int, discount: int = 0) -> InvoiceTotals:
    """Totals of an invoice with these lines for a customer holding ``customer_balance``,
    ``discount`` taken off the subtotal (no taxes in the sandbox)."""
    subtotal = sum(line_amounts)
    total = subtotal - discount
    after_balance = total + customer_balance
    return InvoiceTotals(
        subtotal=subtotal,
        total=total,
        starting_balance=customer_balance,
        ending_balance=min(after_balance, 0),
        amount_due=max(after_balance, 0),
    )
