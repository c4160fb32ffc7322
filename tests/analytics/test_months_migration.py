"""Migration 0008 fills ``mrr_months`` of an existing database from its MRR segments.

The rows the rollups maintained as the mirror was written are kept aside; the
table is dropped (downgrade to 0007) and the migration runs again on the same
segments: it must give the same monthly sums, and the MRR series read from them
must equal the from-scratch definitions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from alembic import command
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from paydesk.analytics import business, reference
from paydesk.db.engine import create_engine, session_factory
from paydesk.db.migrate import alembic_config, upgrade_to_head
from paydesk.db.models import MrrMonth
from tests.analytics.history import BASE, History, S, insert

DAY = 86_400
# Customers paying across January, February and March 2026: new, churned, upgraded,
# reactivated, yearly.
HISTORY = History(
    payments=[],
    refunds=[],
    disputes=[],
    subscriptions=[
        S("cus_A", "usd", "premium", 999, "month", 1, "active", 100, None, None, ((0, 999),)),
        S("cus_B", "usd", "enterprise", 12000, "year", 1, "canceled", 50, 40 * DAY, 35 * DAY),
        S("cus_B", "usd", "premium", 999, "month", 1, "active", 65 * DAY, None, None),
        S(
            "cus_C",
            "usd",
            "premium",
            999,
            "month",
            1,
            "active",
            3 * DAY,
            None,
            None,
            ((0, 999), (45 * DAY, 4999)),
        ),
        S("cus_D", "eur", "premium", 900, "month", 1, "canceled", 20 * DAY, 50 * DAY, None),
    ],
)


def _sums(sessions: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with sessions() as session:
        found: dict[tuple[str, int, str], list[object]] = {}
        for currency, month, category, den, num, customers in session.execute(
            select(*MrrMonth.__table__.columns)
        ):
            entry = found.setdefault((currency, month, category), [Fraction(0), 0])
            entry[0] = Fraction(entry[0]) + Fraction(num, den)  # type: ignore[arg-type]
            entry[1] = int(entry[1]) + customers  # type: ignore[call-overload]
        return sorted((*key, *value) for key, value in found.items() if any(value))


def test_migration_fills_the_months_from_the_segments(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        with sessions() as session:
            insert(session, HISTORY)
            session.commit()
        maintained = _sums(sessions)
        assert len({month for _, month, *_ in maintained}) >= 3  # several months moved

        command.downgrade(alembic_config(database_url), "0007")
        with engine.connect() as connection:
            assert not engine.dialect.has_table(connection, "mrr_months")
        upgrade_to_head(database_url)

        assert _sums(sessions) == maintained
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(MrrMonth)) > 0
            now = datetime.fromtimestamp(BASE + 80 * DAY + 5, UTC)
            for currency in ("usd", "eur"):
                assert business.mrr_series(session, now, 4, currency) == reference.mrr_series(
                    session, now, 4, currency
                )
    finally:
        engine.dispose()
