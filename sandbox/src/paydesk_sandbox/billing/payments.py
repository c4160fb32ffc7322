"""The billing half's door into the core's PaymentIntents.

Invoices are paid with real sandbox PaymentIntents, so the core's test-card
outcomes and payment events (``payment_intent.*``, ``charge.*``) apply unchanged.
The PaymentIntent no longer names its invoice (removed in 2025-03-31.basil); the
link is the InvoicePayment, plus a private note on the intent for the success hook.
"""

from __future__ import annotations

from dataclasses import dataclass

from paydesk_sandbox.errors import StripeError
from paydesk_sandbox.resources import payment_intents as core
from paydesk_sandbox.state import Json, SandboxState


@dataclass(frozen=True)
class Outcome:
    """What confirming an invoice's PaymentIntent did."""

    payment_intent: Json
    succeeded: bool
    requires_action: bool
    error: StripeError | None


def invoice_of_intent(state: SandboxState, intent_id: str) -> str | None:
    """The invoice a PaymentIntent was created for, if any."""
    value = state.private_of(intent_id).get("invoice")
    return str(value) if value else None


def create_intent(
    state: SandboxState,
    *,
    amount: int,
    currency: str,
    customer_id: str,
    payment_method: str | None,
    description: str,
    invoice_id: str,
    save_payment_method: bool = False,
) -> Json:
    """An unconfirmed PaymentIntent for an invoice (emits ``payment_intent.created``).

    ``save_payment_method`` sets ``setup_future_usage=off_session`` so the card the
    customer pays with is attached to them, as Stripe does for subscriptions with
    ``payment_settings[save_default_payment_method]=on_subscription``.
    """
    intent = core.create_intent(
        state,
        amount=amount,
        currency=currency,
        customer=customer_id,
        payment_method=payment_method,
        description=description,
        payment_method_types=["card"],
        setup_future_usage="off_session" if save_payment_method else None,
    )
    state.private_of(intent["id"])["invoice"] = invoice_id
    return intent


def confirm_intent(
    state: SandboxState, intent_id: str, *, payment_method: str | None, off_session: bool
) -> Outcome:
    """Confirm the PaymentIntent the way Stripe charges an invoice."""
    intent = core.get_intent(state, intent_id)
    new_pm = payment_method if payment_method != intent["payment_method"] else None
    error = core.confirm_intent(state, intent, payment_method=new_pm, off_session=off_session)
    return Outcome(
        payment_intent=intent,
        succeeded=intent["status"] == "succeeded",
        requires_action=intent["status"] == "requires_action",
        error=error,
    )


def cancel_intent(state: SandboxState, intent_id: str, *, reason: str) -> None:
    """Cancel an invoice's PaymentIntent (voided invoice)."""
    core.cancel_intent(state, core.get_intent(state, intent_id), reason)
