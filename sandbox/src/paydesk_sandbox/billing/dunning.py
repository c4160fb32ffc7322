"""What happens to a subscription when its invoices are paid or fail.

Real Stripe retries failed renewals on the account's retry schedule and, once the
retries run out, cancels the subscription or marks it ``unpaid`` depending on the
Billing settings. The sandbox takes both from :class:`DunningPolicy`, a sandbox
setting, so tests can pick either end state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

DAY: Final = 86_400

EndState = Literal["canceled", "unpaid"]


@dataclass(frozen=True)
class DunningPolicy:
    """Retry delays after each failed attempt, and where the subscription ends up.

    ``retry_delays[i]`` is the wait after the (i+1)-th failed attempt; after
    ``len(retry_delays) + 1`` failed attempts the subscription reaches ``end_state``.
    """

    retry_delays: tuple[int, ...] = field(default=(3 * DAY, 5 * DAY, 7 * DAY))
    end_state: EndState = "canceled"


@dataclass(frozen=True)
class FailureOutcome:
    """The invoice's next attempt (None: no more) and the subscription's new status."""

    next_payment_attempt: int | None
    subscription_status: str
    exhausted: bool


def after_failed_attempt(
    attempt_count: int, failed_at: int, policy: DunningPolicy
) -> FailureOutcome:
    """Outcome of the ``attempt_count``-th failed payment attempt of a renewal invoice."""
    if attempt_count < 1:
        raise ValueError("attempt_count counts attempts made, starting at 1")
    if attempt_count <= len(policy.retry_delays):
        return FailureOutcome(
            next_payment_attempt=failed_at + policy.retry_delays[attempt_count - 1],
            subscription_status="past_due",
            exhausted=False,
        )
    return FailureOutcome(
        next_payment_attempt=None, subscription_status=policy.end_state, exhausted=True
    )


PaymentBehavior = Literal["allow_incomplete", "default_incomplete", "error_if_incomplete"]


def status_after_first_invoice(amount_due: int, paid: bool) -> str:
    """Status of a new subscription once its first invoice was (or wasn't) paid."""
    if amount_due == 0 or paid:
        return "active"
    return "incomplete"
