"""The webhook mirror as comparable data: its business fields, how far the inbox has
been applied, and the reference result of applying a history once, in order."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from paydesk.db.engine import create_engine
from paydesk.db.models import Customer, Dispute, Payment, Refund, StripeEvent, Subscription
from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.process import Worker
from paydesk.webhooks.store import insert_events
from tests.support.databases import migrated_throwaway_postgres

Mirror = dict[str, list[tuple[Any, ...]]]


def mirror_snapshot(engine: Engine) -> Mirror:
    """Every business field of the mirror, sorted."""
    with Session(engine) as session:
        return {
            "payments": sorted(
                (
                    p.stripe_id,
                    p.status,
                    p.amount,
                    p.amount_received,
                    p.failure_code,
                    p.decline_code,
                    p.disputed,
                )
                for p in session.scalars(select(Payment))
            ),
            "subscriptions": sorted(
                (
                    s.stripe_id,
                    s.status,
                    s.price_id,
                    s.unit_amount,
                    s.canceled_at,
                    s.current_period_end,
                )
                for s in session.scalars(select(Subscription))
            ),
            "customers": sorted(
                (c.stripe_id, c.email, c.name) for c in session.scalars(select(Customer))
            ),
            "refunds": sorted(
                (r.stripe_id, r.status, r.amount) for r in session.scalars(select(Refund))
            ),
            "disputes": sorted(
                (d.stripe_id, d.status, d.evidence_due_by, d.closed_at is not None)
                for d in session.scalars(select(Dispute))
            ),
        }


def status_counts(engine: Engine) -> dict[str, int]:
    """Stored events by status (``pending``, ``processed``, …)."""
    with Session(engine) as session:
        rows = session.execute(
            select(StripeEvent.status, func.count()).group_by(StripeEvent.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


def processed_count(engine: Engine) -> int:
    """How many stored events are applied."""
    return status_counts(engine).get("processed", 0)


def in_order_mirror(events: list[dict[str, Any]], *, timeout: float = math.inf) -> Mirror:
    """The mirror after applying ``events`` once each, in order, with one worker.

    Computed on a throwaway database of the shared PostgreSQL; the worker gets
    ``timeout`` seconds (none by default: a busy machine must not fail the reference).
    """
    with migrated_throwaway_postgres() as url:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                insert_events(connection, [event_from_dict(e).row() for e in events])
            Worker(engine, batch_size=500).drain(timeout=timeout)
            counts = status_counts(engine)
            assert counts == {"processed": len(events)}, counts
            return mirror_snapshot(engine)
        finally:
            engine.dispose()
