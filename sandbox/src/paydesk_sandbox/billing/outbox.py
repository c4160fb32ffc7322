"""Event emission for billing, with the option to hold events back.

A subscription created with ``payment_behavior=error_if_incomplete`` whose first
payment fails must leave no trace: no subscription, no invoice and no events about
them. Billing code therefore emits through :func:`emit`, and the create handler runs
inside :func:`held`, which releases the events only if the block succeeds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from paydesk_sandbox.state import Json, SandboxState, clone

_KEY = "billing:outbox"


def emit(state: SandboxState, event_type: str, obj: Json, previous: Json | None = None) -> None:
    """Emit now, or queue a snapshot of ``obj`` while events are held."""
    box = state.private.get(_KEY)
    if box is None:
        state.emit(event_type, obj, previous)
        return
    box["held"].append([event_type, clone(obj), clone(previous) if previous is not None else None])


@contextlib.contextmanager
def held(state: SandboxState, enabled: bool = True) -> Iterator[None]:
    """Hold billing events; emit them in order on success, drop them on an exception.

    Holding reorders billing events after the core's payment events, so callers hold
    only when a failure must erase the operation (``error_if_incomplete``).
    """
    if not enabled or _KEY in state.private:  # nested: the outer block decides
        yield
        return
    state.private[_KEY] = {"held": []}
    try:
        yield
    except BaseException:
        state.private.pop(_KEY, None)
        raise
    box = state.private.pop(_KEY)
    for event_type, obj, previous in box["held"]:
        state.emit(event_type, obj, previous)
