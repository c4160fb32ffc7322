"""Time-based proration in integer minor units.

When a subscription item changes price mid-period, Stripe credits the unused time on
the old price and debits the remaining time on the new one, each as its own invoice
item. Both are ``amount × remaining / period_length``, rounded half-up to a whole
minor unit; integers only, so no float rounding can make a credit and a debit for
the same price differ by a cent.
"""

from __future__ import annotations

from dataclasses import dataclass


def remaining_share(amount: int, period_start: int, period_end: int, at: int) -> int:
    """The part of ``amount`` (a full period's charge) that covers ``[at, period_end)``.

    ``at`` is clamped into the period, so a change at or before the start prorates the
    whole amount and one at or after the end prorates nothing.
    """
    length = period_end - period_start
    if length <= 0:
        raise ValueError("period_end must be after period_start")
    remaining = min(max(period_end - at, 0), length)
    # Round half away from zero, symmetric for negative amounts.
    sign = -1 if amount < 0 else 1
    return sign * ((abs(amount) * remaining * 2 + length) // (2 * length))


@dataclass(frozen=True)
class Proration:
    """The two invoice items a price change produces (``credit`` is ≤ 0)."""

    credit: int
    debit: int

    @property
    def net(self) -> int:
        """What the change costs (negative: what the customer gets back)."""
        return self.credit + self.debit


def price_change(
    old_amount: int, new_amount: int, period_start: int, period_end: int, at: int
) -> Proration:
    """Proration items for moving from ``old_amount`` to ``new_amount`` per period at ``at``."""
    return Proration(
        credit=-remaining_share(old_amount, period_start, period_end, at),
        debit=remaining_share(new_amount, period_start, period_end, at),
    )


@dataclass(frozen=True)
class DiscountedShare:
    """One proration of a discounted item: ``gross`` before discounts, ``net`` after,
    and each discount's part of the difference (all ≥ 0; a credit negates them)."""

    gross: int
    net: int
    discounts: list[tuple[str, int]]


def discounted_share(
    full: int, offs: list[tuple[str, int]], period_start: int, period_end: int, at: int
) -> DiscountedShare:
    """Prorate a full period's charge ``full`` of which the discounts ``offs`` take
    their amounts: the net is the discounted charge prorated (so it matches what the
    customer pays per period), each discount's part its own amount prorated, the last
    one taking the rounding so that gross − parts = net exactly."""
    gross = remaining_share(full, period_start, period_end, at)
    net = remaining_share(full - sum(off for _, off in offs), period_start, period_end, at)
    parts: list[tuple[str, int]] = []
    left = gross - net
    for index, (discount_id, off) in enumerate(offs):
        last = index == len(offs) - 1
        part = left if last else min(left, remaining_share(off, period_start, period_end, at))
        parts.append((discount_id, part))
        left -= part
    return DiscountedShare(gross=gross, net=net, discounts=parts)
