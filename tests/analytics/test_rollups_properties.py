"""Rollup-based figures equal the from-scratch definitions, on SQLite and PostgreSQL.

Random histories spread over several UTC days are written in several committed
transactions, in random order, then partly rewritten (a decline retried to success,
a subscription canceled, a dispute closed), as the worker and the Admin API would.
The rollups those commits maintained must give exactly what
``paydesk.analytics.reference`` recomputes from the whole tables, for windows
that start and end anywhere (on midnights or not); and rebuilding them from
scratch must give the same rows.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from paydesk.analytics import business, months, reference
from paydesk.analytics.rollups import rebuild
from paydesk.db.engine import session_factory
from paydesk.db.models import (
    DailyRollup,
    Dispute,
    MrrCustomer,
    MrrDaily,
    MrrMonth,
    MrrSegment,
    Payment,
    Refund,
    StripeEvent,
    Subscription,
    SubscriptionDaily,
)
from tests.analytics.history import BASE, SPAN, History, S, currencies, histories, insert

STEP = 6 * 3600  # one unit of the generated offsets: 4 a day, so days have several rows
TABLES = (DailyRollup, MrrCustomer, MrrDaily, MrrMonth, MrrSegment, SubscriptionDaily, Payment)
TABLES += (Refund,)
TABLES += (Dispute, StripeEvent, Subscription)

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def spread(history: History) -> History:
    """The history with every offset in units of STEP: about three UTC days."""

    def sub(s: S) -> S:
        return replace(
            s,
            created=s.created * STEP,
            ended_after=None if s.ended_after is None else s.ended_after * STEP,
            canceled_after=None if s.canceled_after is None else s.canceled_after * STEP,
            events=tuple((after * STEP, amount) for after, amount in s.events),
            source_after=s.source_after * STEP,
        )

    return History(
        payments=[replace(p, created=p.created * STEP) for p in history.payments],
        refunds=[replace(r, created=r.created * STEP) for r in history.refunds],
        disputes=[
            replace(
                d,
                created=d.created * STEP,
                closed_after=None if d.closed_after is None else d.closed_after * STEP,
            )
            for d in history.disputes
        ],
        subscriptions=[sub(s) for s in history.subscriptions],
    )


def _clear(session: Session) -> None:
    session.rollback()
    for table in TABLES:
        session.execute(delete(table))
    session.commit()


def _write(session: Session, history: History, order: random.Random) -> None:
    """The history in a few committed transactions, in random order, then some rewrites."""
    parts = [
        History(history.payments, [], [], []),
        History([], history.refunds, [], []),
        History([], [], history.disputes, []),
        *(History([], [], [], [s]) for s in history.subscriptions),
    ]
    order.shuffle(parts)
    for part in parts:
        insert(session, part)
        session.commit()
    # A decline retried to success; a subscription canceled now; a dispute closed.
    payments = session.scalars(select(Payment).order_by(Payment.id)).all()
    for payment in payments[: order.randint(0, len(payments))]:
        if payment.status != "succeeded" and order.random() < 0.5:
            payment.status, payment.failure_code = "succeeded", None
            payment.amount_received = payment.amount
    session.commit()
    for sub in session.scalars(select(Subscription).order_by(Subscription.id)).all():
        if order.random() < 0.2:
            sub.tier = None if sub.tier else "premium"
            session.commit()
        if order.random() < 0.3:
            sub.status = "canceled"
            sub.ended_at = datetime.fromtimestamp(sub.stripe_created + STEP, UTC)
            session.commit()
    for dispute in session.scalars(select(Dispute).where(Dispute.closed_at.is_(None))).all():
        if order.random() < 0.5:
            dispute.status = "won"
            dispute.closed_at = datetime.fromtimestamp(BASE + 2 * 86_400 + 17, UTC)
    session.commit()


def _rows(session: Session) -> dict[str, list[tuple[object, ...]]]:
    def nonzero(row: tuple[object, ...], key: int) -> bool:
        return any(v for v in row[key:])

    segments, customers = MrrSegment.__table__, MrrCustomer.__table__

    return {
        "daily": sorted(
            tuple(row)
            for row in session.execute(select(*DailyRollup.__table__.columns))
            if nonzero(row, 2)
        ),
        "segments": sorted(tuple(r) for r in session.execute(select(*segments.columns))),
        "customers": sorted(tuple(r) for r in session.execute(select(*customers.columns))),
        "tiers": sorted(
            tuple(row)
            for row in session.execute(select(*SubscriptionDaily.__table__.columns))
            if nonzero(row, 3)
        ),
        "mrr_daily": sorted(
            tuple(row)
            for row in session.execute(select(*MrrDaily.__table__.columns))
            if nonzero(row, 3)
        ),
        "mrr_months": _months(session),
    }


def _months(session: Session) -> list[tuple[object, ...]]:
    """Each (currency, month, category)'s exact amount and customers, whatever the parts."""
    sums: dict[tuple[str, int, str], list[object]] = {}
    for currency, month, category, den, num, customers in session.execute(
        select(*MrrMonth.__table__.columns)
    ):
        entry = sums.setdefault((currency, month, category), [Fraction(0), 0])
        entry[0] = Fraction(entry[0]) + Fraction(num, den)  # type: ignore[arg-type]
        entry[1] = int(entry[1]) + customers  # type: ignore[call-overload]
    return sorted((*key, *value) for key, value in sums.items() if any(value))


def _counts(session: Session) -> dict[str, list[tuple[object, ...]]]:
    """What the Prometheus collector exported before the rollups: whole-table GROUP BYs."""
    tier = func.coalesce(Subscription.tier, "other")
    canceled = Subscription.canceled_at.is_not(None) | Subscription.ended_at.is_not(None)
    return {
        "payments": sorted(
            tuple(row)
            for row in session.execute(
                select(
                    Payment.currency,
                    func.count(),
                    func.count().filter(Payment.status == "succeeded"),
                    func.count().filter(
                        Payment.status != "succeeded", Payment.failure_code.is_not(None)
                    ),
                    func.coalesce(
                        func.sum(Payment.amount_received).filter(Payment.status == "succeeded"),
                        0,
                    ),
                ).group_by(Payment.currency)
            )
        ),
        "subscriptions": sorted(
            tuple(row)
            for row in session.execute(
                select(
                    tier, Subscription.status, func.count(), func.count().filter(canceled)
                ).group_by(tier, Subscription.status)
            )
        ),
    }


def _counts_from_rollups(session: Session) -> dict[str, list[tuple[object, ...]]]:
    daily = DailyRollup
    payments = session.execute(
        select(
            daily.currency,
            func.sum(daily.payments_created),
            func.sum(daily.payments_succeeded),
            func.sum(daily.payments_failed),
            func.sum(daily.payments_volume),
        ).group_by(daily.currency)
    )
    tiers = session.execute(
        select(
            SubscriptionDaily.tier,
            SubscriptionDaily.status,
            func.sum(SubscriptionDaily.subscriptions),
            func.sum(SubscriptionDaily.canceled),
        ).group_by(SubscriptionDaily.tier, SubscriptionDaily.status)
    )
    return {
        "payments": sorted(
            tuple(int(v) if i else v for i, v in enumerate(r)) for r in payments if r[1]
        ),
        "subscriptions": sorted(
            tuple(int(v) if i > 1 else v for i, v in enumerate(r)) for r in tiers if r[2]
        ),
    }


edges = st.sampled_from([0, 0, 1, -1, 3600])
windows = st.tuples(st.integers(0, SPAN + 1), st.integers(0, SPAN + 1), edges, edges).filter(
    lambda w: w[0] * STEP + w[2] < w[1] * STEP + w[3]
)


@PROPERTY
@given(
    history=histories,
    window=windows,
    cur=currencies,
    seed=st.integers(0, 2**32),
)
def test_rollup_figures_equal_the_definitions(
    engine: Engine,
    history: History,
    window: tuple[int, int, int, int],
    cur: str,
    seed: int,
) -> None:
    factory = session_factory(engine)
    with factory() as session:
        _clear(session)
        try:
            _write(session, spread(history), random.Random(seed))
            a = BASE + window[0] * STEP + window[2]
            b = BASE + window[1] * STEP + window[3]
            assert business.overview(session, a, b, cur) == reference.overview(session, a, b, cur)
            # The month so far (corrected for what starts or ends after now), then
            # January closed: read from its mrr_months rows alone.
            for days, count in ((1.5, 1), (4, 2), (40, 3)):
                now = datetime.fromtimestamp(BASE + days * 86_400, UTC)
                assert business.mrr_series(session, now, count, cur) == reference.mrr_series(
                    session, now, count, cur
                )
            assert _counts(session) == _counts_from_rollups(session)
            maintained = _rows(session)
            session.commit()
            rebuild(factory, batch=3)
            assert _rows(session) == maintained
            months.fill(session)  # from the segments in SQL, as the migration does
            assert _rows(session) == maintained
            session.commit()
        finally:
            _clear(session)
