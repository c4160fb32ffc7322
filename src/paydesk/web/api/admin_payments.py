"""Admin API: payments and refunds."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from paydesk import queries
from paydesk.admin_actions import payments
from paydesk.auth.roles import Permission
from paydesk.billing.payments import (
    PaymentOutcome,
    PaymentRequest,
    get_payment,
)
from paydesk.billing.refunds import RefundRequest, get_refund
from paydesk.db.models import Payment, Refund
from paydesk.web.api.admin_auth import AuditFailures, ContextDep, require, require_action
from paydesk.web.api.deps import GatewayDep, IdempotencyKeyDep, SessionDep
from paydesk.web.api.pagination import (
    CreatedGte,
    CreatedLt,
    Cursor,
    Limit,
    page_of,
)
from paydesk.web.api.schemas import (
    CaptureBody,
    Page,
    PaymentCreate,
    PaymentOut,
    PaymentResult,
    RefundCreate,
    RefundOut,
    error_responses,
)

router = APIRouter(
    prefix="/api/admin",
    tags=["admin: payments and refunds"],
    dependencies=[AuditFailures, require(Permission.READ)],
)

_ERRORS = error_responses(402, 404, 409, 422, 503)


def payment_result(outcome: PaymentOutcome) -> PaymentResult:
    """The API view of a payment action's outcome."""
    return PaymentResult(
        payment=PaymentOut.model_validate(outcome.payment),
        client_secret=outcome.client_secret,
        next_action=outcome.next_action,
    )


@router.get("/payments", summary="List payments")
def list_payments(
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    customer: Annotated[str | None, Query(max_length=255, description="Customer id")] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    created_gte: CreatedGte = None,
    created_lt: CreatedLt = None,
    q: Annotated[
        str | None,
        Query(max_length=320, description="A payment/charge id or customer email"),
    ] = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> Page[PaymentOut]:
    """Payments, newest first, with optional filters and search."""
    query = queries.payments(
        queries.PaymentFilter(
            status=status,
            customer=customer,
            currency=currency,
            created_gte=created_gte,
            created_lt=created_lt,
            q=q,
        )
    )
    return page_of(session, Payment, query, cursor, limit, PaymentOut)


@router.get("/payments/{payment_id}", summary="One payment", responses=_ERRORS)
def retrieve_payment(payment_id: str, session: SessionDep) -> PaymentOut:
    """A payment by PaymentIntent id."""
    return PaymentOut.model_validate(get_payment(session, payment_id))


@router.post(
    "/payments",
    summary="Create a payment",
    responses=_ERRORS,
    dependencies=[require_action(payments.CREATE)],
)
def create(
    body: PaymentCreate, ctx: ContextDep, gateway: GatewayDep, key: IdempotencyKeyDep
) -> PaymentResult:
    """Create and (with a payment method) confirm a payment.

    ``succeeded``, ``requires_action`` (3-D Secure: use ``client_secret`` and
    ``next_action``), ``processing`` or ``requires_capture`` come back as 200;
    a decline is a 402 error with the decline code. Send an ``Idempotency-Key``
    so a retried request makes one payment.
    """
    request = PaymentRequest(
        amount=body.amount,
        currency=body.currency,
        request_key=key or uuid.uuid4().hex,
        payment_method=body.payment_method,
        confirm=body.confirm and body.payment_method is not None,
        capture_method=body.capture_method,
        return_url=body.return_url,
        off_session=body.off_session,
        description=body.description,
        receipt_email=body.receipt_email,
    )
    return payment_result(payments.create(ctx, gateway, body.customer, request))


@router.post(
    "/payments/{payment_id}/capture",
    summary="Capture a payment",
    responses=_ERRORS,
    dependencies=[require_action(payments.CAPTURE)],
)
def capture(payment_id: str, body: CaptureBody, ctx: ContextDep, gateway: GatewayDep) -> PaymentOut:
    """Capture an authorised (``requires_capture``) payment, fully or partly."""
    return PaymentOut.model_validate(payments.capture(ctx, gateway, payment_id, body.amount))


@router.post(
    "/payments/{payment_id}/cancel",
    summary="Cancel a payment",
    responses=_ERRORS,
    dependencies=[require_action(payments.CANCEL)],
)
def cancel(payment_id: str, ctx: ContextDep, gateway: GatewayDep) -> PaymentOut:
    """Cancel a payment that has not succeeded."""
    return PaymentOut.model_validate(payments.cancel(ctx, gateway, payment_id))


@router.post(
    "/payments/{payment_id}/refresh",
    summary="Re-read from Stripe",
    responses=_ERRORS,
    dependencies=[require_action(payments.REFRESH)],
)
def refresh(payment_id: str, ctx: ContextDep, gateway: GatewayDep) -> PaymentOut:
    """Re-read a payment from Stripe (e.g. after the customer finished 3-D Secure)."""
    return PaymentOut.model_validate(payments.refresh(ctx, gateway, payment_id).payment)


@router.post(
    "/payments/{payment_id}/refunds",
    summary="Refund a payment",
    responses=_ERRORS,
    status_code=201,
    dependencies=[require_action(payments.REFUND)],
)
def refund(
    payment_id: str,
    body: RefundCreate,
    ctx: ContextDep,
    gateway: GatewayDep,
    key: IdempotencyKeyDep,
) -> RefundOut:
    """Refund all (no ``amount``) or part of a succeeded payment.

    Refused before Stripe is asked when the payment did not succeed (e.g. was
    declined) or the amount exceeds what is still refundable.
    """
    row = payments.refund(
        ctx,
        gateway,
        RefundRequest(
            payment_id=payment_id,
            requested_by=ctx.principal.actor,
            amount=body.amount,
            reason=body.reason,
            note=body.note,
            request_key=key,
        ),
    )
    return RefundOut.model_validate(row)


@router.get("/refunds", summary="List refunds")
def list_refunds(
    session: SessionDep,
    payment: Annotated[str | None, Query(max_length=255, description="PaymentIntent id")] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    created_gte: CreatedGte = None,
    created_lt: CreatedLt = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> Page[RefundOut]:
    """Refunds, newest first."""
    query = queries.refunds(
        queries.RefundFilter(
            payment=payment, status=status, created_gte=created_gte, created_lt=created_lt
        )
    )
    return page_of(session, Refund, query, cursor, limit, RefundOut)


@router.get("/refunds/{refund_id}", summary="One refund", responses=_ERRORS)
def retrieve_refund(refund_id: str, session: SessionDep) -> RefundOut:
    """A refund by id."""
    return RefundOut.model_validate(get_refund(session, refund_id))
