"""Admin actions on payments: create, capture, cancel, refresh, refund, pay link."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.admin_actions.core import Action, Context, Done, perform
from paydesk.auth import portal_sessions
from paydesk.auth.roles import Permission
from paydesk.billing.customers import get_customer
from paydesk.billing.payments import (
    PaymentOutcome,
    PaymentRequest,
    cancel_payment,
    capture_payment,
    create_payment,
    get_payment,
    refresh_payment_outcome,
)
from paydesk.billing.refunds import RefundRequest, refund_payment
from paydesk.db.models import Invoice, Payment, Refund
from paydesk.errors import Conflict, NotFound
from paydesk.stripe_gateway import StripeGateway

CREATE = Action("payment.create", Permission.PAYMENTS_WRITE)
CAPTURE = Action("payment.capture", Permission.PAYMENTS_WRITE)
CANCEL = Action("payment.cancel", Permission.PAYMENTS_WRITE)
REFRESH = Action("payment.refresh", Permission.PAYMENTS_REFRESH)
REFUND = Action("refund.create", Permission.REFUNDS_CREATE)
PAY_LINK = Action("payment.pay_link", Permission.PAYMENTS_REFRESH)
# What a customer can still pay: the payment needs a card or authentication.
PAYABLE = ("requires_payment_method", "requires_action", "requires_confirmation")


def _state(row: Payment) -> dict[str, object]:
    return {
        "status": row.status,
        "amount": row.amount,
        "amount_received": row.amount_received,
        "amount_refunded": row.amount_refunded,
    }


def create(
    ctx: Context, gateway: StripeGateway, customer_id: str, request: PaymentRequest
) -> PaymentOutcome:
    """Create (and, with a payment method, confirm) a payment for a customer."""

    def work() -> Done[PaymentOutcome]:
        customer = get_customer(ctx.session, customer_id)
        outcome = create_payment(ctx.session, gateway, customer, request)
        return Done(
            outcome,
            after={
                "amount": request.amount,
                "currency": request.currency,
                "status": outcome.payment.status,
            },
            target=outcome.payment.stripe_id,
        )

    return perform(ctx, CREATE, customer_id, work)


def capture(
    ctx: Context, gateway: StripeGateway, payment_id: str, amount: int | None = None
) -> Payment:
    """Capture an authorised (``requires_capture``) payment, fully or partly."""

    def work() -> Done[Payment]:
        before = _state(get_payment(ctx.session, payment_id))
        row = capture_payment(ctx.session, gateway, payment_id, amount)
        return Done(row, before=before, after={"amount": amount, "status": row.status})

    return perform(ctx, CAPTURE, payment_id, work)


def cancel(ctx: Context, gateway: StripeGateway, payment_id: str) -> Payment:
    """Cancel a payment that has not succeeded."""

    def work() -> Done[Payment]:
        before = _state(get_payment(ctx.session, payment_id))
        row = cancel_payment(ctx.session, gateway, payment_id)
        return Done(row, before=before, after={"status": row.status})

    return perform(ctx, CANCEL, payment_id, work)


def refresh(ctx: Context, gateway: StripeGateway, payment_id: str) -> PaymentOutcome:
    """Re-read a payment from Stripe into the mirror (Stripe itself is not changed)."""

    def work() -> Done[PaymentOutcome]:
        before = _state(get_payment(ctx.session, payment_id))
        outcome = refresh_payment_outcome(ctx.session, gateway, payment_id)
        return Done(outcome, before=before, after=_state(outcome.payment))

    return perform(ctx, REFRESH, payment_id, work)


def refund(ctx: Context, gateway: StripeGateway, request: RefundRequest) -> Refund:
    """Refund a payment in full or in part; the acting admin is who requested it."""

    def work() -> Done[Refund]:
        payment = get_payment(ctx.session, request.payment_id)
        before = {"amount_refunded": payment.amount_refunded, "amount": payment.amount}
        row = refund_payment(
            ctx.session,
            gateway,
            RefundRequest(
                payment_id=request.payment_id,
                requested_by=ctx.principal.actor,
                amount=request.amount,
                reason=request.reason,
                note=request.note,
                request_key=request.request_key,
            ),
        )
        after = {
            "refund": row.stripe_id,
            "amount": row.amount,
            "currency": row.currency,
            "reason": row.reason,
            "status": row.status,
        }
        return Done(row, before=before, after=after)

    return perform(ctx, REFUND, request.payment_id, work)


def payable(ctx: Context, target: str) -> tuple[str, str]:
    """``(what to pay, its customer)`` for an open invoice or unfinished payment ``target``.

    A payment that belongs to an invoice is paid through its invoice (which knows its
    current attempt). ``NotFound`` / ``Conflict`` when nothing awaits the customer.
    """
    target = target[:255]
    if target.startswith("in_"):
        invoice = ctx.session.scalars(
            select(Invoice).where(Invoice.stripe_id == target)
        ).one_or_none()
        if invoice is None or invoice.customer_id is None:
            raise NotFound(f"No such invoice: '{target}'.", code="invoice_not_found")
        if invoice.status != "open":
            raise Conflict(
                f"The invoice is {invoice.status}; only an open invoice can be paid.",
                code="nothing_to_pay",
            )
        return target, invoice.customer_id
    payment = ctx.session.scalars(select(Payment).where(Payment.stripe_id == target)).one_or_none()
    if payment is None or payment.customer_id is None:
        raise NotFound(f"No such payment: '{target}'.", code="payment_not_found")
    if payment.invoice_id:
        return payable(ctx, payment.invoice_id)
    if payment.status not in PAYABLE:
        raise Conflict(
            f"The payment is {payment.status}; nothing awaits the customer.",
            code="nothing_to_pay",
        )
    return target, payment.customer_id


def awaits_customer(session: Session, payment: Payment) -> bool:
    """Whether ``pay_link`` can make a link for ``payment`` (it or its open invoice awaits)."""
    if payment.customer_id is None:
        return False
    if payment.invoice_id:
        invoice = session.scalars(
            select(Invoice).where(Invoice.stripe_id == payment.invoice_id)
        ).one_or_none()
        return invoice is not None and invoice.customer_id is not None and invoice.status == "open"
    return payment.status in PAYABLE


def pay_link(ctx: Context, target: str) -> tuple[portal_sessions.CreatedLink, str, str]:
    """A single-use pay link for ``target`` (``pi_…`` or ``in_…``): link, target, customer."""

    def work() -> Done[tuple[portal_sessions.CreatedLink, str, str]]:
        paid, customer = payable(ctx, target)
        link = portal_sessions.pay_link(
            ctx.session,
            ctx.settings,
            customer_id=customer,
            target=paid,
            created_by=ctx.principal.actor,
        )
        return Done((link, paid, customer), after={"customer": customer}, target=paid)

    return perform(ctx, PAY_LINK, target, work)
