"""Knobs of one sandbox instance (all per instance: nothing is global)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paydesk_sandbox.faults import FaultConfig

API_VERSION = "2026-10-28.endive"  # the version stripe-python 16.1.0 pins


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """How one sandbox instance behaves.

    ``webhook_retry_delays`` are the waits before the 2nd, 3rd, ... delivery attempt:
    Stripe's live-mode schedule (about 5 min, 30 min, 2 h, 5 h, 10 h, then every 10 h
    for three days) compressed about 600-fold; tests shorten them. With
    ``webhook_keep_retrying`` the last delay repeats until the event is delivered or
    the endpoint is disabled or deleted; without it delivery stops after the list.
    ``webhook_concurrency`` bounds the attempts in flight per endpoint.
    ``async_delay`` is how long "shortly afterwards" transitions
    (pending refunds settling) take. ``faults`` makes a share of ``/v1`` requests
    fail (500, 429, timeout, dropped after apply; see ``paydesk_sandbox.faults``);
    it can be changed at run time with ``PUT /_sandbox/faults``.
    """

    snapshot_path: Path | None = None
    webhook_retry_delays: tuple[float, ...] = (0.5, 3.0, 12.0, 30.0, 60.0)
    webhook_keep_retrying: bool = True
    webhook_timeout: float = 10.0
    webhook_concurrency: int = 16
    async_delay: float = 1.0
    api_version: str = API_VERSION
    seed: int | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    # Free-form string settings for resource modules, keys namespaced by module
    # (e.g. "billing.retry_days"), so a process can start with them.
    extra: dict[str, str] = field(default_factory=dict)
