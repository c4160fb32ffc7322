"""Admin API: a pay link for one payment or open invoice that awaits the customer."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from paydesk.auth import portal_sessions
from paydesk.auth.roles import Permission
from paydesk.db.models import Invoice, Payment
from paydesk.errors import Conflict, NotFound
from paydesk.web.api.admin_auth import AuditFailures, PrincipalDep, record, require
from paydesk.web.api.billing import public_base
from paydesk.web.api.deps import SessionDep, SettingsDep
from paydesk.web.api.schemas import error_responses

router = APIRouter(
    prefix="/api/admin",
    tags=["admin: payments and refunds"],
    dependencies=[AuditFailures, require(Permission.READ)],
)
_ERRORS = error_responses(404, 409, 422)
# What a customer can still pay: the payment needs a card or authentication.
PAYABLE = ("requires_payment_method", "requires_action", "requires_confirmation")


class PayLinkOut(BaseModel):
    """A single-use link the customer opens to pay ``target`` (and see nothing else)."""

    url: str
    expires_at: datetime
    target: str
    customer: str


def payable_customer(session: SessionDep, target: str) -> str:
    """The customer of an open invoice or unfinished payment ``target``; 404 / 409 otherwise."""
    if target.startswith("in_"):
        invoice = session.scalars(
            select(Invoice).where(Invoice.stripe_id == target[:255])
        ).one_or_none()
        if invoice is None or invoice.customer_id is None:
            raise NotFound(f"No such invoice: '{target[:255]}'.", code="invoice_not_found")
        if invoice.status != "open":
            raise Conflict(
                f"The invoice is {invoice.status}; only an open invoice can be paid.",
                code="nothing_to_pay",
            )
        return invoice.customer_id
    payment = session.scalars(
        select(Payment).where(Payment.stripe_id == target[:255])
    ).one_or_none()
    if payment is None or payment.customer_id is None:
        raise NotFound(f"No such payment: '{target[:255]}'.", code="payment_not_found")
    if payment.invoice_id:
        # An invoice's payment is paid through its invoice (which knows its current attempt).
        return payable_customer(session, payment.invoice_id)
    if payment.status not in PAYABLE:
        raise Conflict(
            f"The payment is {payment.status}; nothing awaits the customer.",
            code="nothing_to_pay",
        )
    return payment.customer_id


@router.post(
    "/payments/{payment_id}/pay-link",
    summary="Pay link for a payment or open invoice",
    responses=_ERRORS,
    status_code=201,
    dependencies=[require(Permission.PAYMENTS_REFRESH, audit_as="payment.pay_link")],
)
def create_pay_link(
    payment_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> PayLinkOut:
    """A link (valid PAYDESK_PAY_LINK_HOURS, single use) to pay ``pi_…`` or ``in_…``.

    A payment that belongs to an invoice gets its invoice's link. The link opens a
    session scoped to that one item; send it to the customer.
    """
    customer = payable_customer(session, payment_id)
    target = payment_id
    payment = session.scalars(
        select(Payment).where(Payment.stripe_id == payment_id[:255])
    ).one_or_none()
    if payment is not None and payment.invoice_id:
        target = payment.invoice_id
    link = portal_sessions.pay_link(
        session,
        settings,
        customer_id=customer,
        target=target,
        created_by=principal.actor,
    )
    record(request, session, settings, principal, "payment.pay_link", target, after={})
    return PayLinkOut(
        url=portal_sessions.link_url(public_base(request, settings), link),
        expires_at=link.expires_at,
        target=target,
        customer=customer,
    )
