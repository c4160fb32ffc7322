"""Migration 0006 fills the rollups of a small existing database."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from paydesk.analytics import business, reference
from paydesk.db.engine import create_engine, session_factory
from paydesk.db.migrate import alembic_config, upgrade_to_head

BASE = 1_767_225_600  # 2026-01-01


def test_upgrade_to_0006_backfills_the_rollups(migrated_url: str) -> None:
    command.downgrade(alembic_config(migrated_url), "0005")
    engine = create_engine(migrated_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO payments (stripe_id, livemode, stripe_created, source_time, "
                    "amount, amount_received, amount_refunded, currency, status, "
                    "capture_method, disputed, created_at, updated_at) VALUES "
                    "('pi_1', false, :t, 0, 1000, 1000, 0, 'usd', 'succeeded', 'automatic', "
                    "false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"t": BASE + 100},
            )
            connection.execute(
                text(
                    "INSERT INTO subscriptions (stripe_id, livemode, stripe_created, "
                    "source_time, customer_id, status, tier, unit_amount, currency, interval, "
                    "interval_count, cancel_at_period_end, created_at, updated_at) VALUES "
                    "('sub_1', false, :t, :t, 'cus_1', 'active', 'premium', 999, 'usd', "
                    "'month', 1, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"t": BASE + 50},
            )
        upgrade_to_head(migrated_url)
        with session_factory(engine)() as session:
            window = (BASE, BASE + 3 * 86_400, "usd")
            got = business.overview(session, *window)
            assert got == reference.overview(session, *window)
            assert got.payments.succeeded == 1
            assert got.mrr.mrr_end == 999
    finally:
        engine.dispose()
