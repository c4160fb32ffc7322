"""Every filter, sort and search of the Admin API, and every metrics read, is served by an
index on PostgreSQL: no sequential scan of a large table.

The tables get enough rows (and fresh statistics) that the planner would choose a
sequential scan if no index served a query; the queries are the ones the server
really sends, captured while it answers real HTTP requests, then EXPLAINed with
their parameters.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.query_plans import captured, fill, offenders
from tests.support.stack import Stack

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


@pytest.mark.usefixtures("api")
def test_no_request_scans_a_large_table(stack: Stack, api: httpx.Client, migrated_url: str) -> None:
    if not migrated_url.startswith("postgresql"):
        pytest.skip("query plans are PostgreSQL's")
    sizes = fill(stack.engine)
    with captured(stack.engine) as statements:
        for path in REQUESTS:
            response = api.get(path)
            assert response.status_code == 200, (path, response.text)
    assert len(statements) > len(REQUESTS)
    found = offenders(stack.engine, statements, sizes)
    assert found == [], "\n".join(found)
