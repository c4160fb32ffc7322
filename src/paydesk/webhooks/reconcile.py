"""Finding and healing gaps: Stripe's ``/v1/events`` against the inbox.

Webhooks are at-least-once only while Stripe keeps retrying; an endpoint that was
down longer, deleted and re-created, or registered after some events were made
never gets them. The reconciler lists the events Stripe keeps (the last 30 days),
looks each page up in ``stripe_events`` and stores the ones missing there (source
``backfill``), so the worker applies them like delivered ones. Events younger than
``grace_seconds`` are left alone: their delivery is usually still on its way.

It runs continuously beside the worker (``paydesk worker`` and ``paydesk demo``,
every ``PAYDESK_RECONCILE_SECONDS``); its last result feeds the
``paydesk_worker_reconcile_missing_events`` gauge and the console's and doctor's
"N events missing, backfilling".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, select

from paydesk.db.models import StripeEvent
from paydesk.logs import get_logger
from paydesk.settings import Settings
from paydesk.webhooks.events import NotAnEvent, event_from_dict
from paydesk.webhooks.store import insert_events

log = get_logger(__name__)

STRIPE_KEEPS_DAYS = 30
GRACE_SECONDS = 120
FULL_PASS_SECONDS = 3600
PAGE = 100


@dataclass(frozen=True)
class Gap:
    """One comparison: how many events Stripe listed, how many of those (older than the
    grace period) the inbox lacked, and how many of these were stored now."""

    listed: int
    missing: int
    stored: int
    at: float

    @property
    def summary(self) -> str:
        """``N events missing, backfilling`` or ``no events missing``."""
        if self.missing:
            return f"{self.missing} events missing, backfilling"
        return f"no events missing ({self.listed} checked)"


def find_gap(
    engine: Engine,
    events: Iterable[dict[str, Any]],
    *,
    now: float | None = None,
    grace_seconds: float = GRACE_SECONDS,
    store: bool = True,
) -> Gap:
    """Compare ``events`` (``gateway.iter_events``) with the inbox; store the missing
    ones unless ``store`` is false (then only count them)."""
    now = time.time() if now is None else now
    listed = missing = stored = 0
    page: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal missing, stored
        ids = [str(event.get("id")) for event in page]
        # A read: on SQLite it needs no write turn (see paydesk.db.engine).
        with engine.connect().execution_options(paydesk_read_only=True) as connection:
            known = set(
                connection.scalars(
                    select(StripeEvent.event_id).where(StripeEvent.event_id.in_(ids))
                )
            )
        rows = []
        for event in page:
            if event.get("id") in known or int(event.get("created") or 0) > now - grace_seconds:
                continue
            try:
                rows.append(event_from_dict(event, orjson.dumps(event).decode()).row("backfill"))
            except NotAnEvent:
                continue
        missing += len(rows)
        if rows and store:
            with engine.begin() as connection:
                stored += len(insert_events(connection, rows))
        page.clear()

    for event in events:
        listed += 1
        page.append(event)
        if len(page) >= PAGE:
            flush()
    if page:
        flush()
    return Gap(listed=listed, missing=missing, stored=stored, at=now)


def since_window(days: int = STRIPE_KEEPS_DAYS, *, now: float | None = None) -> dict[str, Any]:
    """``/v1/events`` parameters for the events Stripe still keeps."""
    start = (time.time() if now is None else now) - days * 86400
    return {"created": {"gte": int(start)}}


class Reconciler:
    """Runs :func:`find_gap` every ``every`` seconds until stopped; keeps the last result."""

    def __init__(
        self,
        engine: Engine,
        list_events: Callable[[dict[str, Any]], Iterable[dict[str, Any]]],
        *,
        every: float = 60.0,
        grace_seconds: float = GRACE_SECONDS,
        observe: Callable[[Gap], None] | None = None,
    ) -> None:
        self._engine = engine
        self._list_events = list_events
        self.every = every
        self._grace = grace_seconds
        self._observe = observe
        self.last: Gap | None = None
        self.backfilled = 0
        self._since: float | None = None
        self._last_full = 0.0

    def run_once(self) -> Gap:
        """One comparison of the last 30 days; stores what is missing."""
        gap = find_gap(self._engine, self._list_events(since_window()), grace_seconds=self._grace)
        self.last = gap
        self.backfilled += gap.stored
        if gap.missing:
            log.warning(
                "webhook_events_missing",
                missing=gap.missing,
                backfilled=gap.stored,
                listed=gap.listed,
            )
        if self._observe is not None:
            self._observe(gap)
        return gap

    def run(self, stop: threading.Event) -> None:
        """Compare, then wait ``every`` seconds, until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - Stripe or the database is down: next round
                log.warning("webhook_reconcile_failed", error_type=type(exc).__name__)
            stop.wait(self.every)


def build_reconciler(
    settings: Settings, engine: Engine, *, observe: Callable[[Gap], None] | None = None
) -> Reconciler | None:
    """The reconciler for ``settings`` (None without a Stripe key: nothing to compare)."""
    if settings.stripe_secret_key is None:
        return None
    from paydesk.stripe_gateway import build_gateway

    gateway = build_gateway(settings)
    return Reconciler(
        engine,
        gateway.iter_events,  # type: ignore[arg-type]
        every=settings.reconcile_seconds,
        observe=observe,
    )
