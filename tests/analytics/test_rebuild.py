"""``paydesk analytics rebuild`` restores the rollups from the mirror and the inbox."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, func, select

from paydesk.analytics import business, reference
from paydesk.db.engine import create_engine, session_factory
from paydesk.db.migrate import upgrade_to_head
from paydesk.db.models import DailyRollup, MrrCustomer, MrrDaily, MrrSegment
from tests.analytics.history import BASE, D, History, P, R, S, insert
from tests.cli.test_commands import paydesk

DAY = 86_400
HISTORY = History(
    payments=[
        P(10, "usd", "succeeded", None, 1000, 1000),
        P(DAY + 5, "usd", "requires_payment_method", "card_declined", 500, 0),
        P(3 * DAY, "usd", "succeeded", None, 2500, 2500),
    ],
    refunds=[R(2 * DAY, "usd", "succeeded", 400)],
    disputes=[D(DAY, "usd", DAY)],
    subscriptions=[
        S("cus_A", "usd", "premium", 999, "month", 1, "active", 100, None, None, ((0, 999),)),
        S("cus_B", "usd", "enterprise", 12000, "year", 1, "canceled", 50, 2 * DAY, DAY),
        S("cus_A", "usd", "premium", 999, "month", 1, "active", 2 * DAY, None, None),
    ],
)


def test_rebuild_restores_the_rollups(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/rebuild.db"
    upgrade_to_head(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        with sessions() as session:
            insert(session, HISTORY)
            session.commit()
            # A restore of the mirror without its rollups.
            for table in (DailyRollup, MrrCustomer, MrrDaily, MrrSegment):
                session.execute(delete(table))
            session.commit()
            assert business.overview(session, BASE, BASE + 4 * DAY, "usd") != reference.overview(
                session, BASE, BASE + 4 * DAY, "usd"
            )

        result = paydesk("analytics", "rebuild", "--batch", "2", env={"PAYDESK_DATABASE_URL": url})
        assert result.returncode == 0, result.stderr
        assert "rebuilt: days=" in result.stdout

        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(MrrSegment)) == 3  # A: 2, B: 1
            for start, end in ((BASE, BASE + 4 * DAY), (BASE + 30, BASE + 2 * DAY + 7)):
                assert business.overview(session, start, end, "usd") == reference.overview(
                    session, start, end, "usd"
                )
        since = paydesk(
            "analytics", "rebuild", "--since", "2026-01-02", env={"PAYDESK_DATABASE_URL": url}
        )
        assert since.returncode == 0, since.stderr
        with sessions() as session:
            assert business.overview(session, BASE, BASE + 4 * DAY, "usd") == reference.overview(
                session, BASE, BASE + 4 * DAY, "usd"
            )
    finally:
        engine.dispose()
