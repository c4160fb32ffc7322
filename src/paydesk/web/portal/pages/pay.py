"""Paying one open invoice or unfinished payment (the portal's or a pay link's)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from paydesk.billing.mirror import apply_invoice, apply_payment_intent, invoice_subscription_id
from paydesk.billing.subscriptions import refresh_subscription
from paydesk.db.models import PortalSession
from paydesk.errors import Conflict, NotFound
from paydesk.web.api.deps import SessionDep
from paydesk.web.portal.common import (
    AnyCallDep,
    AnySessionDep,
    gateway_of,
    own_invoice,
    own_payment,
    render,
    settings_of,
)

router = APIRouter()


# What a customer may pay from the portal (an open invoice, an unfinished payment).
PAYABLE_PAYMENT_STATUSES = ("requires_payment_method", "requires_action", "requires_confirmation")


@router.get("/pay/{target}")
def pay_page(target: str, request: Request, session: SessionDep, row: AnySessionDep) -> Response:
    item = _payable_item(request, session, row, target)
    return render(request, "pay.html", item)


@router.post("/api/pay/{target}")
def pay(target: str, request: Request, session: SessionDep, row: AnyCallDep) -> JSONResponse:
    """The client secret that pays ``target`` (an open invoice or unfinished payment)."""
    item = _payable_item(request, session, row, target)
    if not item["client_secret"]:
        raise Conflict("This has nothing left to pay.", code="nothing_to_pay")
    return JSONResponse({"client_secret": item["client_secret"]})


@router.post("/api/pay/{target}/refresh")
def pay_refresh(
    target: str, request: Request, session: SessionDep, row: AnyCallDep
) -> JSONResponse:
    """Re-read what was paid from Stripe, and the subscription it belongs to."""
    item = _payable_item(request, session, row, target)
    return JSONResponse({"status": item["status"], "paid": item["paid"]})


def _scoped(row: PortalSession, target: str) -> None:
    if row.purpose == "pay" and row.target != target:
        raise NotFound("No such payment.", code="payment_not_found")


def _payable_item(
    request: Request, session: SessionDep, row: PortalSession, target: str
) -> dict[str, Any]:
    """An invoice or payment of this customer, re-read from Stripe and mirrored."""
    _scoped(row, target)
    gateway = gateway_of(request)
    settings = settings_of(request)
    now = int(time.time())
    if target.startswith("in_"):
        own_invoice(session, row, target)
        invoice = gateway.retrieve_open_invoice(target)
        if invoice.get("customer") != row.customer_id:
            raise NotFound("No such invoice.", code="invoice_not_found")
        apply_invoice(session, invoice, now)
        secret = (invoice.get("confirmation_secret") or {}).get("client_secret")
        paid = invoice.get("status") == "paid"
        sub_id = invoice_subscription_id(invoice)
        if sub_id:
            refresh_subscription(session, gateway, settings, sub_id)
        return {
            "kind": "invoice",
            "id": target,
            "amount": invoice.get("amount_remaining", invoice.get("amount_due", 0)),
            "currency": invoice.get("currency", "usd"),
            "status": invoice.get("status"),
            "description": "Subscription invoice",
            "client_secret": None if paid else secret,
            "paid": paid,
        }
    if target.startswith("pi_"):
        own_payment(session, row, target)
        intent = gateway.retrieve_payment_intent(target)
        if intent.get("customer") != row.customer_id:
            raise NotFound("No such payment.", code="payment_not_found")
        apply_payment_intent(session, intent, now)
        payable = intent.get("status") in PAYABLE_PAYMENT_STATUSES
        return {
            "kind": "payment",
            "id": target,
            "amount": intent.get("amount", 0),
            "currency": intent.get("currency", "usd"),
            "status": intent.get("status"),
            "description": intent.get("description") or "Payment",
            "client_secret": intent.get("client_secret") if payable else None,
            "paid": intent.get("status") == "succeeded",
        }
    raise NotFound("No such payment.", code="payment_not_found")
