"""Every list, filter and search of the console, and the dashboard, is served by an index
on PostgreSQL: no sequential scan of a large table.

The console reads through ``paydesk.queries`` like the Admin API, but combines the
filters differently (a search box on every list, a customer's page with its
payments, subscriptions, refunds, disputes and events, the event inbox), so its
statements are captured and EXPLAINed too, while real HTTP requests of a signed-in
admin are answered, with refunds, disputes and stored events as large as the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import text

from tests.support.query_plans import ROWS, captured, fill, offenders
from tests.support.stack import Stack

MORE = [
    """INSERT INTO refunds (stripe_id, livemode, stripe_created, source_time,
        payment_intent_id, charge_id, amount, currency, status, created_at, updated_at)
    SELECT 're_p' || g, false, 1700000000 + g * 600, 0, 'pi_p' || g, 'ch_p' || g, 500, 'usd',
        CASE WHEN g % 300 = 0 THEN 'failed' ELSE 'succeeded' END, now(), now()
    FROM generate_series(1, :rows) g""",
    """INSERT INTO disputes (stripe_id, livemode, stripe_created, source_time, charge_id,
        payment_intent_id, amount, currency, status, reason, created_at, updated_at)
    SELECT 'dp_p' || g, false, 1700000000 + g * 600, 0, 'ch_p' || g, 'pi_p' || g, 1000, 'usd',
        CASE WHEN g % 400 = 0 THEN 'needs_response' ELSE 'won' END, 'fraudulent', now(), now()
    FROM generate_series(1, :rows) g""",
    """INSERT INTO stripe_events (event_id, type, created, livemode, object_id, payload,
        source, received_at, status, attempts, next_attempt_at)
    SELECT 'evt_p' || g, CASE WHEN g % 500 = 0 THEN 'charge.dispute.created'
        ELSE 'payment_intent.succeeded' END, 1700000000 + g * 60, false, 'pi_p' || (g % :rows),
        '{}', 'webhook', now(), CASE WHEN g % 700 = 0 THEN 'failed' ELSE 'processed' END, 1,
        now()
    FROM generate_series(1, :rows) g""",
    "ANALYZE",
]

PAGES = [
    "/admin/",
    "/admin/payments",
    "/admin/payments?status=requires_capture",
    "/admin/payments?q=pi_p123",
    "/admin/payments?q=ch_p456",
    "/admin/payments?q=person99%40example.com",
    "/admin/payments?status=succeeded&q=person99%40example.com",
    "/admin/payments/pi_p321",
    "/admin/customers",
    "/admin/customers?q=PERSON42%40example.com",
    "/admin/customers?q=cus_p42",
    "/admin/customers/cus_p77",
    "/admin/subscriptions",
    "/admin/subscriptions?tier=enterprise",
    "/admin/subscriptions?status=past_due",
    "/admin/subscriptions?q=sub_p12",
    "/admin/subscriptions?q=person12%40example.com",
    "/admin/subscriptions/sub_p12",
    "/admin/refunds",
    "/admin/refunds?status=failed",
    "/admin/refunds?q=pi_p77",
    "/admin/disputes",
    "/admin/disputes?status=needs_response",
    "/admin/disputes/dp_p40",
    "/admin/events",
    "/admin/events?status=failed",
    "/admin/events?type=charge.dispute.created",
]


def test_no_console_page_scans_a_large_table(
    stack: Stack,
    console_as: Callable[[str], tuple[httpx.Client, str]],
    migrated_url: str,
) -> None:
    if not migrated_url.startswith("postgresql"):
        pytest.skip("query plans are PostgreSQL's")
    client, _ = console_as("admin")
    fill(stack.engine)
    with stack.engine.begin() as connection:
        for statement in MORE:
            connection.execute(text(statement), {"rows": ROWS})
        sizes = {
            name: int(rows)
            for name, rows in connection.execute(
                text("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'")
            )
        }
    assert sizes["refunds"] == sizes["disputes"] == sizes["stripe_events"] == ROWS
    with captured(stack.engine) as statements:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:500])
    assert len(statements) > len(PAGES)
    found = offenders(stack.engine, statements, sizes)
    assert found == [], "\n".join(found)
