"""Every filter, sort and search of the Admin API, and every metrics read, is served by an
index on PostgreSQL: no sequential scan of a large table.

The tables get enough rows (and fresh statistics) that the planner would choose a
sequential scan if no index served a query; the queries are the ones the server
really sends, captured while it answers real HTTP requests, then EXPLAINed with
their parameters.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from tests.support.stack import Stack

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

REQUESTS = [
    "/api/admin/payments",
    "/api/admin/payments?status=requires_capture",
    "/api/admin/payments?currency=gbp",
    "/api/admin/payments?customer=cus_p77",
    "/api/admin/payments?created_gte=2023-11-20T00:00:00Z&created_lt=2023-11-21T00:00:00Z",
    "/api/admin/payments?q=pi_p123",
    "/api/admin/payments?q=ch_p456",
    "/api/admin/payments?q=person99%40example.com",
    "/api/admin/subscriptions?tier=enterprise",
    "/api/admin/subscriptions?status=past_due",
    "/api/admin/subscriptions?customer=cus_p12",
    "/api/admin/customers?email=PERSON42%40example.com",
    "/api/admin/customers",
    "/api/admin/metrics",
    "/api/admin/metrics?currency=eur&start=2023-11-15T10:00:00Z&end=2023-12-20T07:00:00Z",
    "/api/admin/metrics/mrr?months=12",
]


def _whole_reads(plan: dict[str, Any], sizes: dict[str, int]) -> list[str]:
    """Large tables read (nearly) whole: a Seq Scan, or an index walked through a Filter
    that threw away more than ``REMOVED`` rows (an ``OR`` or a filter no index serves)."""
    table = plan.get("Relation Name", "")
    whole = sizes.get(table, 0) > LARGE and (
        plan.get("Node Type") == "Seq Scan" or plan.get("Rows Removed by Filter", 0) > REMOVED
    )
    found = [f"{plan.get('Node Type')} {table}: {plan.get('Filter', '')}"] if whole else []
    for child in plan.get("Plans", []):
        found.extend(_whole_reads(child, sizes))
    return found


@pytest.mark.usefixtures("api")
def test_no_request_scans_a_large_table(stack: Stack, api: httpx.Client, migrated_url: str) -> None:
    if not migrated_url.startswith("postgresql"):
        pytest.skip("query plans are PostgreSQL's")
    with stack.engine.begin() as connection:
        for statement in FILL:
            connection.execute(text(statement), {"rows": ROWS, "rows2": ROWS * 2})
        sizes = {
            name: int(rows)
            for name, rows in connection.execute(
                text("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'")
            )
        }
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    event.listen(stack.engine, "before_cursor_execute", capture)
    try:
        for path in REQUESTS:
            response = api.get(path)
            assert response.status_code == 200, (path, response.text)
    finally:
        event.remove(stack.engine, "before_cursor_execute", capture)

    offenders = []
    with stack.engine.connect() as connection:
        for statement, parameters in captured:
            explained = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
            ).scalar()
            plan = (explained if isinstance(explained, list) else json.loads(explained))[0]
            offenders.extend(_whole_reads(plan["Plan"], sizes))
    assert len(captured) > len(REQUESTS)
    assert offenders == [], "\n".join(map(str, offenders))
