"""A flood of refused deliveries cannot flood the log or the disk: WARNING lines are
sampled per reason and minute, the rest summed up; rows are counters per (reason,
source address, hour), with a bounded number of addresses per reason and hour."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from paydesk.db.models import WebhookRejection
from paydesk.db.models.base import utcnow
from paydesk.webhooks.receive import REJECTION_LOGS_PER_MINUTE, Inbox
from paydesk.webhooks.store import MAX_ADDRESSES_PER_HOUR, OTHER_ADDRESSES, insert_rejection

pytestmark = pytest.mark.postgres


def _rows(engine: Engine) -> dict[tuple[str, str | None], int]:
    with Session(engine) as session:
        return {
            (reason, address): int(count)
            for reason, address, count in session.execute(
                select(
                    WebhookRejection.reason,
                    WebhookRejection.source_address,
                    func.sum(WebhookRejection.count),
                ).group_by(WebhookRejection.reason, WebhookRejection.source_address)
            )
        }


def _row_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(WebhookRejection)) or 0)


def test_refused_deliveries_log_a_sample_and_every_row_counts(engine: Engine) -> None:
    inbox = Inbox(engine)

    async def flood() -> None:
        for _ in range(50):
            await inbox.record_rejection("signature_invalid", "203.0.113.5", 100)
        await inbox.record_rejection("not_an_event", "203.0.113.5", 100)
        await inbox.close()

    with capture_logs() as logs:
        asyncio.run(flood())
    lines = [entry for entry in logs if entry["event"] == "webhook_rejected"]
    per_reason = [entry["reason"] for entry in lines]
    # One window, or two if the flood straddles a minute boundary.
    assert (
        REJECTION_LOGS_PER_MINUTE
        <= per_reason.count("signature_invalid")
        <= 2 * (REJECTION_LOGS_PER_MINUTE)
    )
    assert per_reason.count("not_an_event") == 1
    assert inbox.counters.rejected == {"signature_invalid": 50, "not_an_event": 1}
    # Two rows (one per reason and address) that still count every refusal.
    assert _row_count(engine) <= 4  # 2, or 4 if the flood straddles an hour
    assert _rows(engine) == {
        ("signature_invalid", "203.0.113.5"): 50,
        ("not_an_event", "203.0.113.5"): 1,
    }


def test_a_flood_from_one_and_from_many_addresses_keeps_rows_bounded(engine: Engine) -> None:
    inbox = Inbox(engine)
    one, many = 2000, MAX_ADDRESSES_PER_HOUR + 800

    async def flood() -> None:
        for _ in range(one):
            await inbox.record_rejection("signature_invalid", "198.51.100.66", 2_000_000)
        for n in range(many):
            address = f"2001:db8::{n:x}"
            await inbox.record_rejection("signature_missing", address, 10, detail="no header")
        await inbox.close()

    hour_before = utcnow().replace(minute=0, second=0, microsecond=0)
    with capture_logs():
        asyncio.run(flood())
    hours = 1 if utcnow() < hour_before + timedelta(hours=1) else 2
    # Without aggregation this was one row per delivery: 3,000 rows.
    assert _row_count(engine) <= hours * (1 + MAX_ADDRESSES_PER_HOUR + 1)
    rows = _rows(engine)
    assert rows[("signature_invalid", "198.51.100.66")] == one
    named = sum(
        c for (r, a), c in rows.items() if r == "signature_missing" and a != OTHER_ADDRESSES
    )
    assert named + rows[("signature_missing", OTHER_ADDRESSES)] == many
    assert len([a for (r, a) in rows if r == "signature_missing"]) <= hours * (
        MAX_ADDRESSES_PER_HOUR + 1
    )
    assert inbox.counters.rejected == {"signature_invalid": one, "signature_missing": many}
    with Session(engine) as session:
        big = session.scalars(
            select(WebhookRejection).where(WebhookRejection.reason == "signature_invalid")
        ).first()
        assert big is not None
        # The largest body, not a sum that would overflow a 32-bit column.
        assert big.body_bytes == 2_000_000


def test_each_hour_starts_new_rows(engine: Engine) -> None:
    start = utcnow().replace(minute=59, second=0, microsecond=0)
    with engine.begin() as connection:
        for minutes in (0, 0.5, 1.5, 2):
            insert_rejection(
                connection,
                reason="signature_invalid",
                source_address=None,
                body_bytes=1,
                now=start + timedelta(minutes=minutes),
            )
    with Session(engine) as session:
        counts = sorted(
            int(c)
            for c in session.scalars(
                select(WebhookRejection.count).where(WebhookRejection.source_address.is_(None))
            )
        )
    assert counts == [2, 2]
