"""Each calendar month's MRR movements as rows (``mrr_months``), kept exact incrementally.

A month ``[m, next(m))`` moves a customer's MRR from its value at ``m`` to its value
at ``next(m)`` (docs/METRICS.md); only customers with a segment starting or ending
in ``(m, next(m)]`` can move. A month's figures are a sum over customers, so
unlike the other rollups they are not recomputed per key (that would read every
customer touched in the month on each event): when the rollups recompute a
customer (``paydesk.analytics.rollups.refresh_customers``, under the customer's
lock, in the mirror change's transaction), ``customer_deltas`` compares the
movements its old segments gave with those its new segments give, month by month,
and ``apply`` adds the difference. Replaying an event leaves the segments as they
were, so it adds nothing; events in any order end in the same segments, so in the
same rows. ``fill`` computes every month from the segments in SQL (the migration
that introduced the table, and the benchmark's generator).

Reading (``month_movements``): a whole month is its rows; the month so far, up to
``now``, is its rows corrected for the customers with a segment starting or ending
after ``now`` in that month (usually none): their movement over the whole month is
taken out and their movement up to ``now`` put in, both by indexed queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from fractions import Fraction
from itertools import pairwise
from typing import Any

from sqlalchemy import delete, func, select, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from paydesk.analytics.business import (
    MrrMovements,
    moved_by_category,
    movements_of,
    unix,
)
from paydesk.db.models.analytics import MrrMonth, MrrSegment

Segment = tuple[int, int | None, Fraction]  # valid_from, valid_to (exclusive), amount
Key = tuple[str, int, str, int]  # currency, month, category, amount denominator
Deltas = dict[Key, list[int]]  # key → [amount numerator, customers]


def month_of(moment: int) -> int:
    """The Unix start of the UTC calendar month holding ``moment``."""
    at = datetime.fromtimestamp(moment, UTC)
    return unix(datetime(at.year, at.month, 1, tzinfo=UTC))


def next_month(month: int) -> int:
    """The Unix start of the month after the one starting at ``month``."""
    at = datetime.fromtimestamp(month, UTC)
    year, number = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return unix(datetime(year, number, 1, tzinfo=UTC))


def _amount_at(segments: list[Segment], moment: int) -> Fraction | None:
    for start, end, amount in segments:
        if start <= moment and (end is None or end > moment):
            return amount
    return None


def movement(
    segments: list[Segment], paid_from: int | None, start: int, end: int
) -> tuple[str, Fraction] | None:
    """One customer's movement over ``[start, end)``, as ``moved_by_category`` classifies it."""
    was, now = _amount_at(segments, start), _amount_at(segments, end)
    if was is None:
        if now is None:
            return None
        again = paid_from is not None and paid_from <= start
        return ("reactivation" if again else "new", now)
    if now is None:
        return ("churn", was)
    if now > was:
        return ("expansion", now - was)
    return ("contraction", was - now)


def customer_months(
    currency: str, segments: list[Segment], paid_from: int | None, into: Deltas, sign: int
) -> None:
    """Add ``sign`` × this customer's movement in every month it moves in to ``into``."""
    months = {
        month_of(moment - 1)
        for start, end, _ in segments
        for moment in (start, end)
        if moment is not None
    }
    for month in months:
        found = movement(segments, paid_from, month, next_month(month))
        if found is None:
            continue
        category, amount = found
        entry = into[(currency, month, category, amount.denominator)]
        entry[0] += sign * amount.numerator
        entry[1] += sign


def new_deltas() -> Deltas:
    """An empty set of month differences."""
    return defaultdict(lambda: [0, 0])


def apply(session: Session, deltas: Deltas) -> None:
    """Add the differences to ``mrr_months``, in key order (rows are locked in that order)."""
    rows = [
        {
            "currency": currency,
            "month": month,
            "category": category,
            "amount_den": den,
            "amount_num": num,
            "customers": customers,
        }
        for (currency, month, category, den), (num, customers) in sorted(deltas.items())
        if num or customers
    ]
    if not rows:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = (postgresql.insert if postgres else sqlite.insert)(MrrMonth).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["currency", "month", "category", "amount_den"],
        set_={
            "amount_num": MrrMonth.amount_num + statement.excluded.amount_num,
            "customers": MrrMonth.customers + statement.excluded.customers,
        },
    )
    session.execute(statement)


def fill(session: Session, currencies: Iterable[str] | None = None) -> int:
    """Recompute every month of ``mrr_months`` from the segments (SQL); the months written."""
    if currencies is None:
        currencies = [str(c) for c in session.scalars(select(MrrSegment.currency).distinct())]
    written = 0
    for currency in currencies:
        session.execute(delete(MrrMonth).where(MrrMonth.currency == currency))
        first, last_from, last_to = session.execute(
            select(
                func.min(MrrSegment.valid_from),
                func.max(MrrSegment.valid_from),
                func.max(MrrSegment.valid_to),
            ).where(MrrSegment.currency == currency)
        ).one()
        if first is None:
            continue
        month, last = month_of(int(first) - 1), month_of(max(int(last_from), int(last_to or 0)) - 1)
        deltas = new_deltas()
        while month <= last:
            end = next_month(month)
            for category, (amount, customers) in moved_by_category(
                session, month, end, currency
            ).items():
                deltas[(currency, month, category, amount.denominator)] = [
                    amount.numerator,
                    customers,
                ]
            month, written = end, written + 1
        apply(session, deltas)
    return written


def _stored(session: Session, currency: str, first: int, last: int) -> dict[int, Any]:
    totals: dict[int, dict[str, tuple[Fraction, int]]] = defaultdict(dict)
    for month, category, den, num, customers in session.execute(
        select(
            MrrMonth.month,
            MrrMonth.category,
            MrrMonth.amount_den,
            MrrMonth.amount_num,
            MrrMonth.customers,
        ).where(MrrMonth.currency == currency, MrrMonth.month >= first, MrrMonth.month <= last)
    ):
        amount, count = totals[int(month)].get(category, (Fraction(0), 0))
        totals[int(month)][category] = (
            amount + Fraction(int(num), int(den)),
            count + int(customers),
        )
    return totals


def _combine(
    base: dict[str, tuple[Fraction, int]],
    other: dict[str, tuple[Fraction, int]],
    sign: int,
) -> dict[str, tuple[Fraction, int]]:
    result = dict(base)
    for category, (amount, count) in other.items():
        have, n = result.get(category, (Fraction(0), 0))
        result[category] = (have + sign * amount, n + sign * count)
    return result


def touched_between(currency: str, start: int, end: int) -> Any:
    """The customers with a segment starting or ending in ``(start, end]`` (a CTE)."""
    seg = MrrSegment
    return union(
        select(seg.customer_id).where(
            seg.currency == currency, seg.valid_from > start, seg.valid_from <= end
        ),
        select(seg.customer_id).where(
            seg.currency == currency, seg.valid_to > start, seg.valid_to <= end
        ),
    ).cte("touched")


def month_movements(session: Session, currency: str, bounds: list[int]) -> dict[int, MrrMovements]:
    """Movements (levels left at zero) of each ``[a, b)`` of consecutive ``bounds``.

    Each ``a`` must be a month's start and ``b`` at most the next month's start.
    """
    stored = _stored(session, currency, bounds[0], bounds[-2]) if len(bounds) > 1 else {}
    result: dict[int, MrrMovements] = {}
    for start, end in pairwise(bounds):
        whole = next_month(start)
        if month_of(start) != start or end > whole:
            raise ValueError("each window must be a month or the start of one")
        totals = stored.get(start, {})
        if end < whole:
            later = touched_between(currency, end, whole)
            totals = _combine(totals, moved_by_category(session, start, whole, currency, later), -1)
            totals = _combine(totals, moved_by_category(session, start, end, currency, later), 1)
        result[start] = movements_of(start, end, totals)
    return result
