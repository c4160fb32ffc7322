"""Refunds: validated against the payment's current state before Stripe is asked."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paydesk.billing.mirror import apply_refund
from paydesk.billing.payments import get_payment, refresh_payment
from paydesk.db.models import Payment, Refund
from paydesk.errors import Conflict, InvalidInput, NotFound
from paydesk.money import Money
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.stripe_gateway.params import RefundCreateParams

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
MAX_NOTE_LENGTH = 2000
# Refund metadata naming the operation (an operation_key hash) that made the refund.
OPERATION_METADATA = "paydesk_operation"


@dataclass(frozen=True)
class RefundRequest:
    """A refund of ``amount`` minor units (None: everything still refundable)."""

    payment_id: str
    requested_by: str
    amount: int | None = None
    reason: str | None = None
    note: str | None = None
    # The caller's idempotency key (form token, Idempotency-Key header); without one,
    # the key is derived from the request and the refunds already made.
    request_key: str | None = None


def get_refund(session: Session, refund_id: str) -> Refund:
    """A mirrored refund by id, or ``NotFound``."""
    row = session.scalars(select(Refund).where(Refund.stripe_id == refund_id)).one_or_none()
    if row is None:
        raise NotFound(f"No such refund: '{refund_id}'.", code="refund_not_found")
    return row


def _validate(request: RefundRequest) -> None:
    if request.reason is not None and request.reason not in REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(REASONS)}.", field="reason")
    if request.amount is not None and request.amount <= 0:
        raise InvalidInput("The refund amount must be a positive integer.", field="amount")
    if request.note is not None and len(request.note) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"The note is limited to {MAX_NOTE_LENGTH} characters.", field="note")
    if not request.requested_by:
        raise InvalidInput("Who asked for the refund must be recorded.", field="requested_by")


def refund_block(payment: Payment) -> Conflict | None:
    """Why ``payment`` cannot be refunded as it stands, or ``None`` if it can."""
    if payment.status != "succeeded":
        if payment.status in ("requires_payment_method", "canceled") and payment.failure_code:
            return Conflict(
                "This payment was declined, so no money was taken and there is nothing to refund.",
                code="payment_declined",
                field="payment_id",
            )
        return Conflict(
            f"The payment is {payment.status}; only succeeded payments can be refunded.",
            code="payment_not_refundable",
            field="payment_id",
        )
    if payment.disputed:
        # Stripe refuses to refund a disputed charge: the dispute decides the money.
        return Conflict(
            "The payment is disputed; respond to the dispute instead of refunding.",
            code="payment_disputed",
            field="payment_id",
        )
    if payment.amount_received - payment.amount_refunded <= 0:
        return Conflict("The payment has already been fully refunded.", code="already_refunded")
    return None


def check_refund(payment: Payment, amount: int | None) -> int:
    """The amount a refund of ``amount`` (None: all that is left) takes from ``payment``.

    ``Conflict`` when the payment cannot be refunded; ``InvalidInput`` (field
    ``amount``, code ``amount_too_large``) when more than what is left is asked.
    """
    blocked = refund_block(payment)
    if blocked is not None:
        raise blocked
    refundable = payment.amount_received - payment.amount_refunded
    wanted = amount if amount is not None else refundable
    if wanted <= 0:
        raise InvalidInput("The refund amount must be a positive integer.", field="amount")
    if wanted > refundable:
        raise InvalidInput(
            f"The refund amount ({Money(wanted, payment.currency).format()}) is more than what "
            f"is still refundable ({Money(refundable, payment.currency).format()}).",
            code="amount_too_large",
            field="amount",
        )
    return wanted


def refund_payment(session: Session, gateway: StripeGateway, request: RefundRequest) -> Refund:
    """Refund a succeeded payment fully or partly, recording who asked and why.

    Exactly once per request key: the refund carries its operation key in its metadata,
    so a repeat of a request whose refund Stripe made but whose answer was lost (the
    admin got a 503) finds that refund and returns it instead of refusing the repeat
    (a full refund would look "already refunded") or making a second one.
    """
    _validate(request)
    get_payment(session, request.payment_id)  # NotFound before any Stripe call
    if request.request_key:
        key = operation_key("refund", request.payment_id, request.request_key)
        made = _refund_made_with(gateway, request.payment_id, key)
        if made is not None:
            if request.amount is not None and made.get("amount") != request.amount:
                raise Conflict(
                    "This Idempotency-Key was already used for a refund of another amount.",
                    code="idempotency_conflict",
                )
            return _mirror_refund(session, gateway, request, made)
    payment = refresh_payment(session, gateway, request.payment_id)
    amount = check_refund(payment, request.amount)
    request_key = request.request_key or _derived_key(session, request, amount)
    key = operation_key("refund", payment.stripe_id, request_key)
    params: RefundCreateParams = {
        "payment_intent": payment.stripe_id,
        "amount": amount,
        "metadata": {"requested_by": request.requested_by, OPERATION_METADATA: key},
    }
    if request.reason:
        params["reason"] = request.reason
    return _mirror_refund(session, gateway, request, gateway.create_refund(params, key=key))


def _refund_made_with(gateway: StripeGateway, payment_id: str, key: str) -> dict[str, Any] | None:
    for refund in gateway.list_refunds(payment_id):
        if (refund.get("metadata") or {}).get(OPERATION_METADATA) == key:
            return refund
    return None


def _mirror_refund(
    session: Session, gateway: StripeGateway, request: RefundRequest, refund: dict[str, Any]
) -> Refund:
    row, _ = apply_refund(
        session, refund, int(time.time()), note=request.note, requested_by=request.requested_by
    )
    refresh_payment(session, gateway, request.payment_id)
    return row


def _derived_key(session: Session, request: RefundRequest, amount: int) -> str:
    done = session.scalar(
        select(func.count())
        .select_from(Refund)
        .where(Refund.payment_intent_id == request.payment_id)
    )
    return f"auto:{amount}:{request.reason}:{done}"
