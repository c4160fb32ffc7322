"""Banners every console page shows: demo seeding progress, events missing from the inbox.

One :class:`Notices` per app (``app.state.notices``); whoever knows something sets it:
the demo's seeding thread its progress, the in-process reconciler (demo) its last gap.
The base template reads :meth:`Notices.banners` - nothing here touches the database,
so a page can show them even while the database is busy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SeedProgress:
    """How far the demo's seeding got (updated by its thread, read by pages)."""

    customers_total: int = 0
    customers_done: int = 0
    months_total: int = 0
    month: int = 0
    done: bool = False
    failed: str | None = None

    def line(self) -> str:
        """``Seeding demo data: 120/200 customers, month 3/5``."""
        text = f"Seeding demo data: {self.customers_done}/{self.customers_total} customers"
        if self.months_total:
            text += f", month {self.month}/{self.months_total}"
        return text


@dataclass
class Notices:
    """The banners of one app."""

    seed: SeedProgress | None = None
    # Anything with ``.last`` (a ``reconcile.Gap`` or None): the in-process reconciler.
    reconciler: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def banners(self) -> list[str]:
        """The lines to show now, most urgent first."""
        lines: list[str] = []
        gap = getattr(self.reconciler, "last", None)
        if gap is not None and gap.missing:
            lines.append(f"Webhooks: {gap.summary} from Stripe's /v1/events.")
        seed = self.seed
        if seed is not None and seed.failed:
            lines.append(f"Seeding demo data stopped: {seed.failed}")
        elif seed is not None and not seed.done:
            lines.append(seed.line() + " (pages fill as it goes)")
        return lines


def notices_of(app: Any) -> Notices:
    """The app's notices (created on first use)."""
    found = getattr(app.state, "notices", None)
    if not isinstance(found, Notices):
        found = app.state.notices = Notices()
    return found
