"""One-off payments: PaymentIntents with 3-D Secure, declines, capture and cancel."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.billing.mirror import apply_payment_intent
from paydesk.db.models import Customer, Payment
from paydesk.errors import Conflict, InvalidInput, NotFound, PaymentFailed
from paydesk.money import validate_charge_amount
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.stripe_gateway.params import PaymentIntentCreateParams


@dataclass(frozen=True)
class PaymentRequest:
    """What a caller asks for; ``request_key`` makes retries of one request one payment."""

    amount: int
    currency: str
    request_key: str
    payment_method: str | None = None
    confirm: bool = True
    capture_method: str = "automatic"
    return_url: str | None = None
    # Charging a saved card while the customer is away (renewals, top-ups).
    off_session: bool = False
    description: str | None = None
    receipt_email: str | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True)
class PaymentOutcome:
    """The payment as mirrored, plus what a front end needs to continue (3-D Secure)."""

    payment: Payment
    client_secret: str | None
    next_action: dict[str, Any] | None


def get_payment(session: Session, payment_id: str) -> Payment:
    """A mirrored payment by PaymentIntent id, or ``NotFound``."""
    row = session.scalars(select(Payment).where(Payment.stripe_id == payment_id)).one_or_none()
    if row is None:
        raise NotFound(f"No such payment: '{payment_id}'.", code="payment_not_found")
    return row


def _mirror(session: Session, intent: dict[str, Any]) -> Payment:
    row, _ = apply_payment_intent(session, intent, int(time.time()))
    return row


def _outcome(session: Session, intent: dict[str, Any]) -> PaymentOutcome:
    row = _mirror(session, intent)
    needs_action = intent.get("status") == "requires_action"
    return PaymentOutcome(
        payment=row,
        client_secret=intent.get("client_secret"),
        next_action=intent.get("next_action") if needs_action else None,
    )


def _record_decline(session: Session, gateway: StripeGateway, error: PaymentFailed) -> None:
    # A declined confirmation still leaves a PaymentIntent behind: mirror it so the
    # failure shows up in the payments list and the metrics.
    intent_id = error.details.get("payment_intent")
    if intent_id:
        intent = gateway.retrieve_payment_intent(str(intent_id))
        _mirror(session, intent)
        error.details["payment"] = intent_id
        if error.code == "authentication_required":
            # An off-session charge the bank wants authenticated: the customer must
            # come back on-session; these let the front end run 3-D Secure.
            error.details["client_secret"] = intent.get("client_secret")
            error.details["next_action"] = intent.get("next_action")


def create_payment(
    session: Session, gateway: StripeGateway, customer: Customer, request: PaymentRequest
) -> PaymentOutcome:
    """Create (and by default confirm) a payment for ``customer``.

    Outcomes: ``succeeded``, ``requires_action`` (with ``client_secret`` and
    ``next_action`` for 3-D Secure), ``processing``, ``requires_capture``;
    a decline raises ``PaymentFailed`` carrying the decline code, after the
    failed PaymentIntent has been mirrored.
    """
    currency = request.currency.lower()
    validate_charge_amount(request.amount, currency)
    if request.capture_method not in ("automatic", "manual"):
        raise InvalidInput("capture_method must be automatic or manual.", field="capture_method")
    if request.confirm and not request.payment_method:
        raise InvalidInput("A payment method is needed to confirm.", field="payment_method")
    params: PaymentIntentCreateParams = {
        "amount": request.amount,
        "currency": currency,
        "customer": customer.stripe_id,
        "capture_method": "manual" if request.capture_method == "manual" else "automatic",
        "metadata": dict(request.metadata or {}),
        # Without a return URL the customer cannot come back from a redirect, so
        # only methods that need none (cards, with 3-D Secure in the Stripe SDK).
        "automatic_payment_methods": {
            "enabled": True,
            "allow_redirects": "always" if request.return_url else "never",
        },
    }
    if request.payment_method:
        params["payment_method"] = request.payment_method
    if request.confirm:
        params["confirm"] = True
        if request.off_session:
            params["off_session"] = True
        if request.return_url:
            params["return_url"] = request.return_url
    if request.description:
        params["description"] = request.description
    if request.receipt_email:
        params["receipt_email"] = request.receipt_email
    key = operation_key("payment", customer.stripe_id, request.request_key)
    try:
        intent = gateway.create_payment_intent(params, key=key)
    except PaymentFailed as declined:
        _record_decline(session, gateway, declined)
        raise
    return _outcome(session, intent)


def confirm_payment(
    session: Session,
    gateway: StripeGateway,
    payment_id: str,
    *,
    payment_method: str,
    return_url: str | None,
    request_key: str,
) -> PaymentOutcome:
    """Confirm a payment created without confirmation."""
    payment = get_payment(session, payment_id)
    if payment.status not in ("requires_payment_method", "requires_confirmation"):
        raise Conflict(
            f"The payment is {payment.status}; only unconfirmed payments can be confirmed.",
            code="payment_not_confirmable",
        )
    params: dict[str, Any] = {"payment_method": payment_method}
    if return_url:
        params["return_url"] = return_url
    try:
        intent = gateway.confirm_payment_intent(
            payment_id,
            params,  # type: ignore[arg-type]
            key=operation_key("confirm", payment_id, request_key),
        )
    except PaymentFailed as declined:
        declined.details.setdefault("payment_intent", payment_id)
        _record_decline(session, gateway, declined)
        raise
    return _outcome(session, intent)


def capture_payment(
    session: Session, gateway: StripeGateway, payment_id: str, amount: int | None
) -> Payment:
    """Capture an authorised payment (all, or ``amount`` ≤ what was authorised)."""
    payment = get_payment(session, payment_id)
    if payment.status != "requires_capture":
        raise Conflict(
            f"The payment is {payment.status}; only authorised payments can be captured.",
            code="payment_not_capturable",
        )
    if amount is not None and not 0 < amount <= payment.amount:
        raise InvalidInput(
            f"The capture amount must be between 1 and {payment.amount}.", field="amount"
        )
    intent = gateway.capture_payment_intent(
        payment_id, amount, key=operation_key("capture", payment_id, amount)
    )
    return _mirror(session, intent)


CANCELABLE = {
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
}


def cancel_payment(session: Session, gateway: StripeGateway, payment_id: str) -> Payment:
    """Cancel a payment that has not succeeded (releases an authorisation)."""
    payment = get_payment(session, payment_id)
    if payment.status not in CANCELABLE:
        raise Conflict(
            f"The payment is {payment.status} and can no longer be canceled.",
            code="payment_not_cancelable",
        )
    intent = gateway.cancel_payment_intent(payment_id, key=operation_key("cancel", payment_id))
    return _mirror(session, intent)


def refresh_payment(session: Session, gateway: StripeGateway, payment_id: str) -> Payment:
    """Re-read a payment from Stripe into the mirror (e.g. after 3-D Secure)."""
    return _mirror(session, gateway.retrieve_payment_intent(payment_id))


def refresh_payment_outcome(
    session: Session, gateway: StripeGateway, payment_id: str
) -> PaymentOutcome:
    """Re-read a payment, with what the customer still has to do (e.g. a 3-D Secure URL)."""
    get_payment(session, payment_id)  # NotFound before any Stripe call
    return _outcome(session, gateway.retrieve_payment_intent(payment_id))


def next_action_url(next_action: dict[str, Any] | None) -> str | None:
    """The page a customer must visit to finish paying (3-D Secure, a bank), if any."""
    if not next_action:
        return None
    redirect = next_action.get("redirect_to_url")
    if isinstance(redirect, dict) and isinstance(redirect.get("url"), str):
        return str(redirect["url"])
    return None
