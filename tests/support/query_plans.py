"""Query plans on PostgreSQL: tables large enough for the planner to prefer an index,
the statements a real server sends while it answers HTTP requests, and the check that
EXPLAINs each one and lists the large tables it reads (nearly) whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, text

ROWS = 40_000  # per mirror table: the planner prefers an index over this many rows
LARGE = 5_000  # a sequential scan of a table with more rows than this fails the test
REMOVED = 2_000  # so does an index walk that filters out more rows than this

FILL = [
    """INSERT INTO customers (stripe_id, livemode, stripe_created, source_time, email,
        deleted, created_at, updated_at)
    SELECT 'cus_p' || g, false, 1700000000 + g * 600, 0, 'Person' || g || '@Example.com',
        false, now(), now() FROM generate_series(1, :rows) g""",
    """INSERT INTO payments (stripe_id, livemode, stripe_created, source_time, customer_id,
        amount, amount_received, amount_refunded, currency, status, capture_method,
        latest_charge_id, disputed, created_at, updated_at)
    SELECT 'pi_p' || g, false, 1700000000 + g * 600, 0, 'cus_p' || (g % :rows + 1),
        1000 + g % 5000, 1000, 0, CASE WHEN g % 500 = 0 THEN 'gbp' ELSE 'usd' END,
        CASE WHEN g % 1000 = 0 THEN 'requires_capture'
             ELSE (ARRAY['succeeded','succeeded','requires_payment_method'])[g % 3 + 1] END,
        'automatic', 'ch_p' || g, false, now(), now()
    FROM generate_series(1, :rows2) g""",
    """INSERT INTO subscriptions (stripe_id, livemode, stripe_created, source_time,
        customer_id, status, tier, unit_amount, currency, interval, interval_count,
        cancel_at_period_end, created_at, updated_at)
    SELECT 'sub_p' || g, false, 1700000000 + g * 600, 0, 'cus_p' || g,
        CASE WHEN g % 700 = 0 THEN 'past_due' ELSE 'active' END,
        CASE WHEN g % 900 = 0 THEN 'enterprise' ELSE 'premium' END, 999, 'usd', 'month', 1,
        false,
        now(), now()
    FROM generate_series(1, :rows) g""",
    # The rollups, as the worker would have kept them (sizes matter, values do not).
    """INSERT INTO mrr_segments (currency, customer_id, valid_from, valid_to, amount_num,
        amount_den)
    SELECT 'usd', 'cus_p' || g, 1700000000 + g * 600,
        CASE WHEN g % 4 = 0 THEN 1700000000 + g * 900 END, 999, 1
    FROM generate_series(1, :rows) g""",
    """INSERT INTO mrr_customers (currency, customer_id, paid_from)
    SELECT 'usd', 'cus_p' || g, 1700000000 + g * 600 FROM generate_series(1, :rows) g""",
    """INSERT INTO analytics_daily (currency, day, payments_created, payments_succeeded,
        payments_failed, payments_volume, refunds_created, refunds_succeeded, refunds_amount,
        disputes_opened, disputes_resolved, disputes_resolution_seconds, subscriptions_new)
    SELECT c, 1699920000 + d * 86400, 100, 80, 10, 80000, 2, 2, 500, 1, 1, 3600, 50
    FROM generate_series(0, 999) d, unnest(ARRAY['usd','eur','gbp']) c""",
    """INSERT INTO mrr_daily (currency, day, amount_den, started, ended, started_num,
        ended_num)
    SELECT 'usd', 1699920000 + d * 86400, 1, 100, 20, 99900, 19980
    FROM generate_series(0, 999) d""",
    "ANALYZE",
]


def fill(engine: Engine) -> dict[str, int]:
    """Fill the mirror and rollups (``FILL``); the row count of every table."""
    with engine.begin() as connection:
        for statement in FILL:
            connection.execute(text(statement), {"rows": ROWS, "rows2": ROWS * 2})
        return {
            name: int(rows)
            for name, rows in connection.execute(
                text("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'")
            )
        }


def whole_reads(plan: dict[str, Any], sizes: dict[str, int]) -> list[str]:
    """Large tables read (nearly) whole: a Seq Scan, or an index walked through a Filter
    that threw away more than ``REMOVED`` rows (an ``OR`` or a filter no index serves)."""
    table = plan.get("Relation Name", "")
    whole = sizes.get(table, 0) > LARGE and (
        plan.get("Node Type") == "Seq Scan" or plan.get("Rows Removed by Filter", 0) > REMOVED
    )
    found = [f"{plan.get('Node Type')} {table}: {plan.get('Filter', '')}"] if whole else []
    for child in plan.get("Plans", []):
        found.extend(whole_reads(child, sizes))
    return found


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs ``engine`` sends meanwhile, with their parameters."""
    found: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def offenders(
    engine: Engine, statements: list[tuple[str, Any]], sizes: dict[str, int]
) -> list[str]:
    """Each large table one of ``statements`` reads (nearly) whole, EXPLAINed with ANALYZE."""
    found: list[str] = []
    with engine.connect() as connection:
        for statement, parameters in statements:
            explained = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
            ).scalar()
            plan = (explained if isinstance(explained, list) else json.loads(explained))[0]
            found.extend(whole_reads(plan["Plan"], sizes))
    return found
