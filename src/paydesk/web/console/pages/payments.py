"""Console payments: list and search, detail, refund."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paydesk import queries
from paydesk.admin_actions import payments as payment_actions
from paydesk.billing.payments import get_payment
from paydesk.billing.refunds import REASONS, RefundRequest
from paydesk.db.models import Payment
from paydesk.errors import InvalidInput
from paydesk.queries import page
from paydesk.web.api.deps import SessionDep, get_gateway
from paydesk.web.console.common import (
    PREFIX,
    FormDep,
    PrincipalDep,
    action_context,
    confirm,
    form_field,
    format_money,
    parse_amount,
    render,
)

router = APIRouter()


@router.get("/payments")
def payments(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    q: str = "",
    cursor: str | None = None,
) -> Response:
    q = q.strip()[:320]
    query = queries.payments(queries.PaymentFilter(status=status, q=q))
    rows, next_cursor = page(session, Payment, query, cursor, 25)
    context = {"rows": rows, "next_cursor": next_cursor, "status": status, "q": q}
    template = "payments_rows.html" if request.headers.get("hx-request") else "payments.html"
    return render(request, template, context)


@router.get("/payments/{payment_id}")
def payment_detail(
    payment_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    payment = get_payment(session, payment_id)
    refunds = queries.refunds_of(session, payment.stripe_id)
    related = [payment.stripe_id, *(r.stripe_id for r in refunds)]
    if payment.latest_charge_id:
        related.append(payment.latest_charge_id)
    events = queries.timeline(session, related)
    customer = queries.customer_by_id(session, payment.customer_id)
    return render(
        request,
        "payment.html",
        {
            "payment": payment,
            "refunds": refunds,
            "events": events,
            "customer": customer,
            "reasons": REASONS,
            "refundable": payment.amount_received - payment.amount_refunded,
            "form_key": secrets.token_hex(16),
        },
    )


@router.post("/payments/{payment_id}/refund")
def refund(
    payment_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    ctx = action_context(request, session, principal)
    ctx.begin(payment_actions.REFUND, payment_id)
    payment = get_payment(session, payment_id)
    amount = parse_amount(form_field(form, "amount"), payment.currency)
    reason = form_field(form, "reason") or None
    if reason is not None and reason not in REASONS:
        raise InvalidInput("Unknown refund reason.", field="reason")
    note = form_field(form, "note")[:2000] or None
    shown = amount if amount is not None else payment.amount_received - payment.amount_refunded
    if form_field(form, "confirm") != "yes":
        return confirm(
            request,
            title="Confirm refund",
            summary=[
                f"Refund {format_money(shown, payment.currency)}"
                f"{' (full remaining amount)' if amount is None else ''} "
                f"of payment {payment.stripe_id}.",
                f"Reason: {reason or 'none'}.",
                "This returns money to the customer and cannot be undone.",
            ],
            action=f"{PREFIX}/payments/{payment_id}/refund",
            fields={
                "amount": form_field(form, "amount"),
                "reason": reason or "",
                "note": note or "",
                "form_key": form_field(form, "form_key"),
            },
            button="Refund",
        )
    row = payment_actions.refund(
        ctx,
        get_gateway(request),
        RefundRequest(
            payment_id=payment_id,
            requested_by=principal.actor,
            amount=amount,
            reason=reason,
            note=note,
            request_key=f"console-{form_field(form, 'form_key')[:64]}"
            if form_field(form, "form_key")
            else None,
        ),
    )
    return RedirectResponse(
        f"{PREFIX}/payments/{payment_id}?refunded={row.stripe_id}", status_code=303
    )
