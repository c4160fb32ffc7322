"""Billing settings of one sandbox instance.

They come from ``SandboxConfig.extra`` (string values, so the CLI and tests can set
them without the core knowing about billing):

- ``billing.retries_exhausted``: ``canceled`` (default) or ``unpaid`` — where a
  subscription ends up once its failed renewal has used up every retry.
- ``billing.retry_days``: comma-separated days between retries, default ``3,5,7``.
"""

from __future__ import annotations

from paydesk.sandbox.billing.dunning import DAY, DunningPolicy, EndState
from paydesk.sandbox.state import SandboxState

END_STATE_KEY = "billing.retries_exhausted"
RETRY_DAYS_KEY = "billing.retry_days"


def dunning_policy(state: SandboxState) -> DunningPolicy:
    """The retry schedule and end state configured for ``state``'s instance."""
    extra = state.config.extra
    end: EndState = "unpaid" if extra.get(END_STATE_KEY) == "unpaid" else "canceled"
    raw_days = extra.get(RETRY_DAYS_KEY)
    if raw_days is None:
        return DunningPolicy(end_state=end)
    delays = tuple(int(day) * DAY for day in raw_days.split(",") if day.strip())
    return DunningPolicy(retry_delays=delays, end_state=end)
