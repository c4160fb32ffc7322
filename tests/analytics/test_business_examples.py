"""One worked example per metric, on SQLite and PostgreSQL, with hand-computed answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from paydesk.analytics.business import (
    mrr_movements,
    mrr_series,
    overview,
    round_minor,
)
from tests.analytics.history import BASE, D, History, P, R, S, insert

DAY = 86_400


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated database (SQLite and PostgreSQL)."""
    with Session(engine) as db_session:
        yield db_session
        db_session.rollback()


HISTORY = History(
    payments=[
        P(10, "usd", "succeeded", None, 1000, 1000),
        P(20, "usd", "succeeded", None, 2001, 2001),
        P(30, "usd", "requires_payment_method", "card_declined", 500, 0),
        P(40, "usd", "requires_action", None, 700, 0),  # no outcome yet
        P(50, "eur", "requires_payment_method", "card_declined", 500, 0),  # other currency
        P(DAY, "usd", "succeeded", None, 9999, 9999),  # after the window
    ],
    refunds=[R(60, "usd", "succeeded", 400), R(61, "usd", "failed", 1000)],
    disputes=[D(70, "usd", 600), D(80, "usd", None)],
    subscriptions=[
        # cus_A: premium monthly since before the window, upgraded by a second sub.
        S("cus_A", "usd", "premium", 999, "month", 1, "active", -10, None, None),
        S("cus_A", "usd", "enterprise", 2999, "month", 1, "active", 100, None, None),
        # cus_B: yearly enterprise (12000/12 = 1000 a month), canceled in the window.
        S("cus_B", "usd", "enterprise", 12000, "year", 1, "canceled", -10, 200, 150),
        # cus_C: new in the window; cus_D: free tier, never MRR.
        S("cus_C", "usd", "premium", 999, "month", 1, "active", 300, None, None),
        S("cus_D", "usd", "free", 0, "month", 1, "active", 5, None, None),
    ],
)


def test_overview_of_a_worked_example(session: Session) -> None:
    insert(session, HISTORY)
    got = overview(session, BASE, BASE + 1000, "USD")

    assert (got.payments.succeeded, got.payments.failed) == (2, 1)
    assert got.payments.failure_rate == Fraction(1, 3)
    assert got.payments.success_rate == Fraction(2, 3)
    assert got.payments.volume == 3001
    assert round_minor(got.payments.average_value or Fraction(0)) == 1501  # 1500.5 → 1501

    assert (got.refunds.count, got.refunds.amount) == (1, 400)
    assert got.refunds.refund_rate == Fraction(1, 2)

    assert (got.disputes.opened, got.disputes.resolved) == (2, 1)
    assert got.disputes.dispute_rate == 1
    assert got.disputes.mean_resolution_seconds == 600

    mrr = got.mrr
    assert mrr.mrr_start == 999 + 1000
    assert mrr.mrr_end == 999 + 2999 + 999
    assert (mrr.new, mrr.expansion, mrr.churn) == (999, 2999, 1000)
    assert (mrr.contraction, mrr.reactivation) == (0, 0)
    assert mrr.subscriber_churn_rate == Fraction(1, 2)
    assert mrr.revenue_churn_rate == Fraction(1000, 1999)
    assert got.new_subscriptions == 3  # cus_A's second, cus_C's and free cus_D's


def test_mrr_series_by_calendar_month(session: Session) -> None:
    insert(session, HISTORY)
    now = datetime.fromtimestamp(BASE + 40 * DAY, UTC)  # 2026-02-10
    series = mrr_series(session, now, 2, "usd")
    assert [datetime.fromtimestamp(m.start, UTC).month for m in series] == [1, 2]
    assert series[0].mrr_start == 999 + 1000  # cus_A and cus_B, created 10 s before
    assert series[0].mrr_end == series[1].mrr_start == 999 + 2999 + 999
    assert series[1].end == BASE + 40 * DAY + 1  # now's second included


def test_tier_changes_from_stored_events_are_expansion_and_contraction(session: Session) -> None:
    history = History(
        payments=[],
        refunds=[],
        disputes=[],
        subscriptions=[
            # cus_U: premium from 0, upgraded at 100 (event); the mirror says enterprise.
            S("cus_U", "usd", "enterprise", 2999, "month", 1, "active", 0, None, None,
              events=((0, 999), (100, 2999)), source_after=100),
            # cus_V: enterprise from 0, downgraded by the API at 300 (no event for it yet).
            S("cus_V", "usd", "premium", 999, "month", 1, "active", 0, None, None,
              events=((0, 2999),), source_after=300),
        ],
    )  # fmt: skip
    insert(session, history)
    first = mrr_movements(session, BASE + 50, BASE + 200, "usd")
    assert (first.mrr_start, first.mrr_end) == (999 + 2999, 2999 + 2999)
    assert (first.expansion, first.contraction, first.new) == (2000, 0, 0)
    second = mrr_movements(session, BASE + 200, BASE + 400, "usd")
    assert (second.expansion, second.contraction) == (0, 2000)
    assert second.mrr_end == 2999 + 999
    assert second.revenue_churn_rate == Fraction(2000, 5998)
