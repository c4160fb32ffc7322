"""Admin API: a pay link for one payment or open invoice that awaits the customer."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from paydesk.admin_actions import payments
from paydesk.auth import portal_sessions
from paydesk.auth.roles import Permission
from paydesk.web.api.admin_auth import AuditFailures, ContextDep, require, require_action
from paydesk.web.api.billing import public_base
from paydesk.web.api.schemas import error_responses

router = APIRouter(
    prefix="/api/admin",
    tags=["admin: payments and refunds"],
    dependencies=[AuditFailures, require(Permission.READ)],
)
_ERRORS = error_responses(404, 409, 422)


class PayLinkOut(BaseModel):
    """A single-use link the customer opens to pay ``target`` (and see nothing else)."""

    url: str
    expires_at: datetime
    target: str
    customer: str


@router.post(
    "/payments/{payment_id}/pay-link",
    summary="Pay link for a payment or open invoice",
    responses=_ERRORS,
    status_code=201,
    dependencies=[require_action(payments.PAY_LINK)],
)
def create_pay_link(payment_id: str, request: Request, ctx: ContextDep) -> PayLinkOut:
    """A link (valid PAYDESK_PAY_LINK_HOURS, single use) to pay ``pi_…`` or ``in_…``.

    A payment that belongs to an invoice gets its invoice's link. The link opens a
    session scoped to that one item; send it to the customer.
    """
    link, target, customer = payments.pay_link(ctx, payment_id)
    return PayLinkOut(
        url=portal_sessions.link_url(public_base(request, ctx.settings), link),
        expires_at=link.expires_at,
        target=target,
        customer=customer,
    )
