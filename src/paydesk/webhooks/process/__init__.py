"""The webhook worker: claim stored events, apply them, record what happened.

Three rooms: ``lease`` (claims, releases, row ownership and advisory locks, in
SQL), ``apply`` (the two-pass apply of one batch with savepoints, and the
counters) and ``loop`` (the ``Worker`` that runs rounds of both). Importers use
the names below.
"""

from __future__ import annotations

from paydesk.webhooks.process.apply import (
    DEFAULT_MAX_ATTEMPTS,
    WorkerCounters,
    backoff_seconds,
)
from paydesk.webhooks.process.lease import LEASE, RELEASE_RETRY_DELAYS, Lease
from paydesk.webhooks.process.loop import DEFAULT_BATCH, BatchObserver, Worker, build_worker

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MAX_ATTEMPTS",
    "LEASE",
    "RELEASE_RETRY_DELAYS",
    "BatchObserver",
    "Lease",
    "Worker",
    "WorkerCounters",
    "backoff_seconds",
    "build_worker",
]
