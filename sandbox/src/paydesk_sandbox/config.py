"""Knobs of one sandbox instance (all per instance: nothing is global)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paydesk_sandbox.faults import FaultConfig

API_VERSION = "2026-10-28.endive"  # the version stripe-python 16.1.0 pins


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """How one sandbox instance behaves.

    ``webhook_retry_delays`` are the waits before the 2nd, 3rd, ... delivery attempt;
    tests shorten them. ``async_delay`` is how long "shortly afterwards" transitions
    (pending refunds settling) take. ``faults`` makes a share of ``/v1`` requests
    fail (500, 429, timeout, dropped after apply; see ``paydesk_sandbox.faults``);
    it can be changed at run time with ``PUT /_sandbox/faults``.
    """

    snapshot_path: Path | None = None
    webhook_retry_delays: tuple[float, ...] = (1.0, 5.0, 25.0)
    webhook_timeout: float = 5.0
    async_delay: float = 1.0
    api_version: str = API_VERSION
    seed: int | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    # Free-form string settings for resource modules, keys namespaced by module
    # (e.g. "billing.retry_days"), so a process can start with them.
    extra: dict[str, str] = field(default_factory=dict)
