"""Console payments: list, search and CSV export, detail, refund, capture, cancel, refresh,
and a pay link for a payment that awaits the customer."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk import queries
from paydesk.admin_actions import payments as payment_actions
from paydesk.auth import portal_sessions
from paydesk.billing.payments import CANCELABLE, get_payment, next_action_url
from paydesk.billing.refunds import REASONS, RefundRequest, check_refund, refund_block
from paydesk.db.models import Payment
from paydesk.errors import InvalidInput, PaydeskError
from paydesk.queries import page
from paydesk.web.api.billing import public_base
from paydesk.web.api.deps import SessionDep, get_gateway
from paydesk.web.console.common import (
    PREFIX,
    FormDep,
    PrincipalDep,
    action_context,
    confirm,
    csv_response,
    form_field,
    format_money,
    may,
    parse_amount,
    render,
)
from paydesk.web.errors import status_for

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


PAYMENT_COLUMNS = (
    "id",
    "created",
    "customer",
    "amount",
    "amount_received",
    "amount_refunded",
    "currency",
    "status",
    "capture_method",
    "charge",
    "card_brand",
    "card_last4",
    "failure_code",
    "decline_code",
    "disputed",
)


@router.get("/payments.csv")
def payments_csv(
    request: Request, session: SessionDep, principal: PrincipalDep, status: str = "", q: str = ""
) -> Response:
    query = queries.payments(queries.PaymentFilter(status=status, q=q))

    def rows(session: Session) -> Iterator[tuple[object, ...]]:
        for p in queries.iter_all(session, Payment, query):
            yield (
                p.stripe_id,
                p.stripe_created,
                p.customer_id,
                p.amount,
                p.amount_received,
                p.amount_refunded,
                p.currency,
                p.status,
                p.capture_method,
                p.latest_charge_id,
                p.card_brand,
                p.card_last4,
                p.failure_code,
                p.decline_code,
                p.disputed,
            )

    return csv_response(request, session, "payments", PAYMENT_COLUMNS, rows)


def _detail(
    request: Request,
    session: Session,
    payment: Payment,
    *,
    status: int = 200,
    **extra: object,
) -> Response:
    refunds = queries.refunds_of(session, payment.stripe_id)
    related = [payment.stripe_id, *(r.stripe_id for r in refunds)]
    if payment.latest_charge_id:
        related.append(payment.latest_charge_id)
    blocked = refund_block(payment)
    context: dict[str, object] = {
        "payment": payment,
        "refunds": refunds,
        "events": queries.timeline(session, related),
        "customer": queries.customer_by_id(session, payment.customer_id),
        "reasons": REASONS,
        "refundable": max(payment.amount_received - payment.amount_refunded, 0),
        "refund_blocked": blocked.message if blocked is not None else None,
        "form_key": secrets.token_hex(16),
        "values": {},
        "cancelable": payment.status in CANCELABLE,
        "pay_link_offered": payment_actions.awaits_customer(session, payment)
        and may(request, payment_actions.PAY_LINK),
    }
    context.update(extra)
    return render(request, "payment.html", context, status=status)


@router.get("/payments/{payment_id}")
def payment_detail(
    payment_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    return _detail(request, session, get_payment(session, payment_id))


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
    confirmed = form_field(form, "confirm") == "yes"
    note = form_field(form, "note")[:2000] or None
    try:
        amount = parse_amount(form_field(form, "amount"), payment.currency)
        reason = form_field(form, "reason") or None
        if reason is not None and reason not in REASONS:
            raise InvalidInput("Unknown refund reason.", field="reason")
        if not confirmed:
            # The review step checks against the mirror; the refund itself re-reads Stripe.
            shown = check_refund(payment, amount)
    except PaydeskError as exc:
        if confirmed:
            raise  # the attempt failed: audited, shown on the error page
        # Reviewing is not acting: the form comes back with the error next to its field.
        return _detail(
            request,
            session,
            payment,
            status=status_for(exc),
            error=exc.message,
            error_code=exc.code,
            error_field=exc.field,
            values={
                "amount": form_field(form, "amount")[:64],
                "reason": form_field(form, "reason")[:64],
                "note": note or "",
            },
        )
    if not confirmed:
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


@router.post("/payments/{payment_id}/pay-link")
def pay_link(
    payment_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    """A single-use pay link for a payment (or its open invoice) that awaits the customer.

    Nothing changes in Stripe: no confirmation. The link is shown once, on the page this
    answers with; a payment that awaits nothing is a ``Conflict`` (audited, error page).
    """
    ctx = action_context(request, session, principal)
    link, target, _customer = payment_actions.pay_link(ctx, payment_id)
    return _detail(
        request,
        session,
        get_payment(session, payment_id),
        flash="Pay link created: copy it now, it is not shown again.",
        pay_link_url=portal_sessions.link_url(public_base(request, ctx.settings), link),
        pay_link_expires=link.expires_at,
        pay_link_target=target,
    )


_PAYMENT_ACTIONS = {
    "capture": payment_actions.CAPTURE,
    "cancel": payment_actions.CANCEL,
    "refresh": payment_actions.REFRESH,
}


@router.post("/payments/{payment_id}/{action}")
def payment_action(
    payment_id: str,
    action: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    """Capture (manual capture), cancel (not yet succeeded) or re-read a payment."""
    if action not in _PAYMENT_ACTIONS:
        raise StarletteHTTPException(404)
    ctx = action_context(request, session, principal)
    ctx.begin(_PAYMENT_ACTIONS[action], payment_id)
    payment = get_payment(session, payment_id)
    gateway = get_gateway(request)
    url = f"{PREFIX}/payments/{payment_id}"
    if action == "refresh":
        # Nothing changes in Stripe: no confirmation. The page shows the customer's
        # pending step (3-D Secure) as a link an operator can pass on.
        outcome = payment_actions.refresh(ctx, gateway, payment_id)
        return _detail(
            request,
            session,
            outcome.payment,
            flash="Payment re-read from Stripe.",
            next_action_url=next_action_url(outcome.next_action),
        )
    if form_field(form, "confirm") != "yes":
        text = {
            "capture": f"Capture {format_money(payment.amount, payment.currency)} of "
            f"{payment.stripe_id}: the customer's authorised money is taken.",
            "cancel": f"Cancel {payment.stripe_id}: no money will be taken"
            " (an authorisation is released).",
        }[action]
        return confirm(
            request,
            title=f"Confirm {action}",
            summary=[text],
            action=f"{url}/{action}",
            fields={},
            button="Capture" if action == "capture" else "Cancel payment",
        )
    if action == "capture":
        payment_actions.capture(ctx, gateway, payment_id)
        return RedirectResponse(f"{url}?done=captured", status_code=303)
    payment_actions.cancel(ctx, gateway, payment_id)
    return RedirectResponse(f"{url}?done=payment_canceled", status_code=303)
