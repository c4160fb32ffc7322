"""Billing-period arithmetic for recurring prices.

Stripe computes every period boundary from the subscription's billing-cycle anchor,
not from the previous boundary, so a subscription anchored on Jan 31 bills on
Feb 28 (clamped), then Mar 31 again, not Mar 28. All times are Unix seconds, UTC.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Final

INTERVALS: Final = ("day", "week", "month", "year")

_DAY_SECONDS: Final = 86_400


def _add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus ``months`` calendar months, clamping the day to the month's end."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def boundary(anchor: int, interval: str, interval_count: int, cycles: int) -> int:
    """The timestamp ``cycles`` billing intervals after ``anchor``.

    ``cycles`` may be 0 (the anchor itself) or negative (boundaries before it).
    """
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    if interval_count < 1:
        raise ValueError("interval_count must be at least 1")
    steps = interval_count * cycles
    if interval == "day":
        return anchor + steps * _DAY_SECONDS
    if interval == "week":
        return anchor + steps * 7 * _DAY_SECONDS
    start = datetime.fromtimestamp(anchor, tz=UTC)
    months = steps if interval == "month" else steps * 12
    return int(_add_months(start, months).timestamp())


def period_at(anchor: int, interval: str, interval_count: int, moment: int) -> tuple[int, int]:
    """The ``(start, end)`` of the billing period that contains ``moment``.

    Periods are half-open: a renewal falls due exactly at ``end``.
    """
    # Estimate the cycle index from the average interval length, then correct it;
    # the estimate is off by at most one or two for month and year intervals.
    approx_seconds = {
        "day": _DAY_SECONDS,
        "week": 7 * _DAY_SECONDS,
        "month": 2_629_746,
        "year": 31_556_952,
    }[interval] * interval_count
    cycles = (moment - anchor) // approx_seconds
    while boundary(anchor, interval, interval_count, cycles) > moment:
        cycles -= 1
    while boundary(anchor, interval, interval_count, cycles + 1) <= moment:
        cycles += 1
    return (
        boundary(anchor, interval, interval_count, cycles),
        boundary(anchor, interval, interval_count, cycles + 1),
    )


def interval_seconds_upper_bound(interval: str, interval_count: int) -> int:
    """A length no single period of this interval can exceed (used for clock-advance limits)."""
    days = {"day": 1, "week": 7, "month": 31, "year": 366}[interval]
    return int(timedelta(days=days * interval_count).total_seconds())
