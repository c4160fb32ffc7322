"""Customers: one per app user, even when the first requests race."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from paydesk.billing.customers import ensure_customer
from paydesk.db.models import Customer
from tests.support.stack import Stack


def test_concurrent_first_requests_make_one_customer(stack: Stack) -> None:
    results: list[str] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def first_request() -> None:
        try:
            with stack.sessions() as session:
                start.wait()
                row = ensure_customer(
                    session, stack.gateway, user_id="racer", email="r@example.com"
                )
                session.commit()
                results.append(row.stripe_id)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(set(results)) == 1
    with stack.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
    in_stripe = [
        c for c in stack.sdk.v1.customers.list({"limit": 100}).data
        if c.metadata.to_dict().get("paydesk_user_id") == "racer"
    ]  # fmt: skip
    assert [c.id for c in in_stripe] == results[:1]
