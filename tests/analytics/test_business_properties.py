"""Every business metric against a brute-force recomputation on random histories.

The brute force works on the generated Python records, straight from the
definitions in docs/METRICS.md; the code under test reads them back from a real
(SQLite) database. Each example rolls its rows back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from paydesk.analytics.business import (
    dispute_metrics,
    mrr_movements,
    new_subscriptions,
    payment_metrics,
    refund_metrics,
)
from tests.analytics.history import BASE, SPAN, History, S, currencies, histories, insert, windows

PROPERTY = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

PER_MONTH = {"month": Fraction(1), "year": Fraction(1, 12), "week": Fraction(52, 12)}
PER_MONTH["day"] = Fraction(365, 12)


@contextmanager
def inserted(session: Session, history: History) -> Iterator[Session]:
    """The history in the database for the duration of one example."""
    try:
        insert(session, history)
        yield session
    finally:
        session.rollback()


def _ratio(num: Fraction | int, den: Fraction | int) -> Fraction | None:
    return None if den == 0 else Fraction(num) / Fraction(den)


# --- brute force ----------------------------------------------------------------------


def bf_payments(history: History, a: int, b: int, cur: str) -> tuple[int, int, int]:
    window = [p for p in history.payments if p.currency == cur and a <= p.created < b]
    succeeded = [p for p in window if p.status == "succeeded"]
    failed = [p for p in window if p.status != "succeeded" and p.failure_code is not None]
    return len(succeeded), len(failed), sum(p.amount_received for p in succeeded)


def bf_monthly(s: S, unit_amount: int) -> Fraction:
    return Fraction(unit_amount) * PER_MONTH[s.interval] / s.interval_count


def bf_counts(s: S, cur: str) -> bool:
    return s.currency == cur and s.status not in ("incomplete", "incomplete_expired", "trialing")


def bf_timeline(s: S) -> list[tuple[int, Fraction]]:
    """(from when, monthly amount): the first applies from creation, each later one after."""
    current = Fraction(0) if s.tier == "free" else bf_monthly(s, s.unit_amount)
    if not s.events:
        return [(s.created, current)]
    points = [(s.created, bf_monthly(s, s.events[0][1]))]
    points += [(s.created + after, bf_monthly(s, amount)) for after, amount in s.events[1:]]
    last_event = s.created + s.events[-1][0]
    return [*points, (max(last_event, s.created + s.source_after), current)]


def bf_amount(s: S, t: int, cur: str) -> Fraction:
    """The subscription's monthly amount after everything strictly before ``t``."""
    end = bf_end(s)
    if not bf_counts(s, cur) or not (s.created < t and (end is None or end >= t)):
        return Fraction(0)
    value = Fraction(0)
    for when, amount in bf_timeline(s):
        if when < t:
            value = amount
    return value


def bf_paid_before(s: S, t: int, cur: str) -> bool:
    return bf_counts(s, cur) and any(when < t and amount > 0 for when, amount in bf_timeline(s))


def bf_end(s: S) -> int | None:
    if s.ended_after is not None:
        return s.created + s.ended_after
    if s.status == "canceled":
        return s.created + s.canceled_after if s.canceled_after is not None else s.created
    return None


def bf_mrr(history: History, t: int, cur: str) -> dict[str, Fraction]:
    """Each customer's MRR after everything strictly before ``t``."""
    out: dict[str, Fraction] = {}
    for s in history.subscriptions:
        amount = bf_amount(s, t, cur)
        if amount > 0:
            out[s.customer] = out.get(s.customer, Fraction(0)) + amount
    return out


# --- properties ------------------------------------------------------------------------


@PROPERTY
@given(history=histories, window=windows, cur=currencies)
def test_payment_rates_and_average(
    sqlite_sessions: Session, history: History, window: tuple[int, int], cur: str
) -> None:
    a, b = window
    succeeded, failed, volume = bf_payments(history, a, b, cur)
    with inserted(sqlite_sessions, history) as session:
        got = payment_metrics(session, BASE + a, BASE + b, cur)
    assert (got.succeeded, got.failed, got.volume) == (succeeded, failed, volume)
    assert got.success_rate == _ratio(succeeded, succeeded + failed)
    assert got.failure_rate == _ratio(failed, succeeded + failed)
    assert got.average_value == _ratio(volume, succeeded)
    if got.success_rate is not None and got.failure_rate is not None:
        assert got.success_rate + got.failure_rate == 1


@PROPERTY
@given(history=histories, window=windows, cur=currencies)
def test_refund_rate_and_amount(
    sqlite_sessions: Session, history: History, window: tuple[int, int], cur: str
) -> None:
    a, b = window
    succeeded, _, _ = bf_payments(history, a, b, cur)
    done = [
        r
        for r in history.refunds
        if r.currency == cur and r.status == "succeeded" and a <= r.created < b
    ]
    with inserted(sqlite_sessions, history) as session:
        pay = payment_metrics(session, BASE + a, BASE + b, cur)
        got = refund_metrics(session, BASE + a, BASE + b, cur, payments=pay)
    assert got.count == len(done)
    assert got.amount == sum(r.amount for r in done)
    assert got.refund_rate == _ratio(len(done), succeeded)


@PROPERTY
@given(history=histories, window=windows, cur=currencies)
def test_dispute_rate_and_resolution_time(
    sqlite_sessions: Session, history: History, window: tuple[int, int], cur: str
) -> None:
    a, b = window
    succeeded, _, _ = bf_payments(history, a, b, cur)
    opened = [d for d in history.disputes if d.currency == cur and a <= d.created < b]
    resolved = [
        d.closed_after
        for d in history.disputes
        if d.currency == cur and d.closed_after is not None and a <= d.created + d.closed_after < b
    ]
    with inserted(sqlite_sessions, history) as session:
        pay = payment_metrics(session, BASE + a, BASE + b, cur)
        got = dispute_metrics(session, BASE + a, BASE + b, cur, payments=pay)
    assert got.opened == len(opened)
    assert got.dispute_rate == _ratio(len(opened), succeeded)
    assert got.resolved == len(resolved)
    assert got.mean_resolution_seconds == _ratio(sum(resolved), len(resolved))


@PROPERTY
@given(history=histories, window=windows, cur=currencies)
def test_mrr_movements_and_churn(
    sqlite_sessions: Session, history: History, window: tuple[int, int], cur: str
) -> None:
    a, b = window
    before, after = bf_mrr(history, a, cur), bf_mrr(history, b, cur)
    ever_paid_before_a = {s.customer for s in history.subscriptions if bf_paid_before(s, a, cur)}
    expected = dict.fromkeys(("new", "reactivation", "expansion", "contraction", "churn"), 0)
    movement: dict[str, Fraction] = {k: Fraction(0) for k in expected}
    churned = 0
    for customer in set(before) | set(after):
        was, now = before.get(customer, Fraction(0)), after.get(customer, Fraction(0))
        if customer not in before:
            key = "reactivation" if customer in ever_paid_before_a else "new"
            movement[key] += now
        elif customer not in after:
            movement["churn"] += was
            churned += 1
        elif now >= was:
            movement["expansion"] += now - was
        else:
            movement["contraction"] += was - now
    mrr_a, mrr_b = sum(before.values(), Fraction(0)), sum(after.values(), Fraction(0))

    with inserted(sqlite_sessions, history) as session:
        got = mrr_movements(session, BASE + a, BASE + b, cur)

    assert (got.mrr_start, got.mrr_end) == (mrr_a, mrr_b)
    assert got.new == movement["new"]
    assert got.reactivation == movement["reactivation"]
    assert got.expansion == movement["expansion"]
    assert got.contraction == movement["contraction"]
    assert got.churn == movement["churn"]
    assert got.mrr_end == (
        got.mrr_start + got.new + got.reactivation + got.expansion - got.contraction - got.churn
    )
    assert (got.customers_start, got.customers_end) == (len(before), len(after))
    assert got.churned_customers == churned
    assert got.subscriber_churn_rate == _ratio(churned, len(before))
    assert got.revenue_churn_rate == _ratio(movement["churn"] + movement["contraction"], mrr_a)


@PROPERTY
@given(history=histories, window=windows, cur=currencies)
def test_new_subscriptions(
    sqlite_sessions: Session, history: History, window: tuple[int, int], cur: str
) -> None:
    a, b = window
    expected = sum(
        1
        for s in history.subscriptions
        if s.currency == cur
        and s.status not in ("incomplete", "incomplete_expired")
        and a <= s.created < b
    )
    with inserted(sqlite_sessions, history) as session:
        assert new_subscriptions(session, BASE + a, BASE + b, cur) == expected


@PROPERTY
@given(history=histories, cut=st.integers(0, SPAN), cur=currencies)
def test_mrr_is_additive_over_consecutive_windows(
    sqlite_sessions: Session, history: History, cut: int, cur: str
) -> None:
    """Movements of [0, cut) and [cut, SPAN] chain: the end of one is the start of the next."""
    with inserted(sqlite_sessions, history) as session:
        first = mrr_movements(session, BASE, BASE + cut, cur)
        second = mrr_movements(session, BASE + cut, BASE + SPAN + 1, cur)
    assert first.mrr_end == second.mrr_start
