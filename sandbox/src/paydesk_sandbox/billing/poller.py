"""Renewals for customers without a test clock, on the sandbox's own clock.

Such customers "follow real time": a background tick on the server loop runs their
due renewals, finalizations and retries. The tick also notices shifts of the sandbox
clock (``POST /_sandbox/clock``) within a second.
"""

from __future__ import annotations

import secrets
import time

from paydesk_sandbox.billing import clock_engine
from paydesk_sandbox.state import SandboxState

TICK_SECONDS = 1.0
_KEY = "billing:poller"


def ensure_running(state: SandboxState) -> None:
    """Start the tick unless one beat recently (a restored snapshot has none running)."""
    data = state.private_of(_KEY)
    if time.time() - float(data.get("beat", 0)) < 5 * TICK_SECONDS:
        return
    token = secrets.token_hex(8)
    data.update(token=token, beat=time.time())
    state.call_later(TICK_SECONDS, lambda: _tick(state, token))


def _tick(state: SandboxState, token: str) -> None:
    data = state.private_of(_KEY)
    if data.get("token") != token:
        return  # superseded (reset, or a newer tick chain)
    data["beat"] = time.time()
    # Reschedule first so a failing action cannot stop renewals for good.
    state.call_later(TICK_SECONDS, lambda: _tick(state, token))
    clock_engine.catch_up_real_time(state)
