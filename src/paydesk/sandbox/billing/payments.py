"""The billing half's door into the core's PaymentIntents.

Invoices are paid with real sandbox PaymentIntents, so the core's test-card
outcomes and payment events (``payment_intent.*``, ``charge.*``) apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from paydesk.sandbox.errors import StripeError
from paydesk.sandbox.state import Json, SandboxState


@dataclass(frozen=True)
class Outcome:
    """What confirming an invoice's PaymentIntent did."""

    payment_intent: Json
    succeeded: bool
    requires_action: bool
    error: StripeError | None


def create_intent(
    state: SandboxState,
    *,
    amount: int,
    currency: str,
    customer_id: str,
    payment_method: str | None,
    description: str,
    invoice_id: str,
) -> Json:
    """An unconfirmed PaymentIntent for an invoice (emits ``payment_intent.created``)."""
    raise NotImplementedError


def confirm_intent(
    state: SandboxState, intent_id: str, *, payment_method: str | None, off_session: bool
) -> Outcome:
    """Confirm the PaymentIntent the way Stripe charges an invoice."""
    raise NotImplementedError


def cancel_intent(state: SandboxState, intent_id: str, *, reason: str) -> None:
    """Cancel an invoice's PaymentIntent (voided invoice)."""
    raise NotImplementedError
