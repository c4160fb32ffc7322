"""A flood of refused deliveries cannot flood the log: WARNING lines are sampled per
reason and minute, the rest summed up."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from paydesk.db.models import WebhookRejection
from paydesk.webhooks.receive import REJECTION_LOGS_PER_MINUTE, Inbox


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
    with Session(engine) as session:
        rows = session.scalar(select(func.count()).select_from(WebhookRejection))
    assert rows == 51  # the metric and the console still see every refusal
