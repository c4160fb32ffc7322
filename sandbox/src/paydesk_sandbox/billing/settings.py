"""Billing settings of one sandbox instance.

Two sources, the first that has a value wins:

1. ``POST /_sandbox/billing/settings`` (see :mod:`billing.admin`), kept in the
   instance's state so it survives snapshots;
2. ``SandboxConfig.extra`` (string values, so a process can start with them).

- ``retries_exhausted`` (extra key ``billing.retries_exhausted``): ``canceled``
  (default) or ``unpaid`` — where a subscription ends up once its failed renewal has
  used up every retry (Stripe's Billing setting of the same purpose).
- ``retry_days`` (``billing.retry_days``): comma-separated days between retries,
  default ``3,5,7`` (four attempts over fifteen days).
"""

from __future__ import annotations

from paydesk_sandbox.billing.dunning import DAY, DunningPolicy, EndState
from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.state import Json, SandboxState

END_STATE_KEY = "billing.retries_exhausted"
RETRY_DAYS_KEY = "billing.retry_days"
_PRIVATE = "billing:settings"
DEFAULTS = {"retries_exhausted": "canceled", "retry_days": "3,5,7"}


def current(state: SandboxState) -> Json:
    """The effective settings as strings, e.g. ``{"retries_exhausted": "canceled", ...}``."""
    stored = state.private_of(_PRIVATE)
    extra = state.config.extra
    return {
        "retries_exhausted": stored.get("retries_exhausted")
        or extra.get(END_STATE_KEY)
        or DEFAULTS["retries_exhausted"],
        "retry_days": stored.get("retry_days")
        or extra.get(RETRY_DAYS_KEY)
        or DEFAULTS["retry_days"],
    }


def _days(raw: str) -> tuple[int, ...]:
    try:
        days = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise invalid_request(
            "retry_days must be comma-separated whole days, e.g. 3,5,7.", param="retry_days"
        ) from None
    if any(day < 0 for day in days):
        raise invalid_request("retry_days cannot be negative.", param="retry_days")
    return days


def update(state: SandboxState, *, retries_exhausted: str | None, retry_days: str | None) -> Json:
    """Validate and store new settings; returns the effective ones."""
    stored = state.private_of(_PRIVATE)
    if retries_exhausted is not None:
        if retries_exhausted not in ("canceled", "unpaid"):
            raise invalid_request(
                "retries_exhausted must be canceled or unpaid.", param="retries_exhausted"
            )
        stored["retries_exhausted"] = retries_exhausted
    if retry_days is not None:
        _days(retry_days)
        stored["retry_days"] = retry_days
    return current(state)


def dunning_policy(state: SandboxState) -> DunningPolicy:
    """The retry schedule and end state configured for ``state``'s instance."""
    values = current(state)
    end: EndState = "unpaid" if values["retries_exhausted"] == "unpaid" else "canceled"
    delays = tuple(day * DAY for day in _days(values["retry_days"]))
    return DunningPolicy(retry_delays=delays, end_state=end)
