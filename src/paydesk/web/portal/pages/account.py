"""The customer's pages: overview, plans, checkout, card, invoices and receipts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from paydesk.billing import promotions
from paydesk.billing.subscriptions import live_subscription
from paydesk.billing.tiers import TIER_BY_KEY, configured_price_ids
from paydesk.db.models import Customer, Invoice, Payment
from paydesk.errors import NotFound
from paydesk.web.api.deps import SessionDep
from paydesk.web.portal.common import (
    PREFIX,
    PortalDep,
    customer_of,
    discounted,
    own_invoice,
    own_payment,
    promotion_view,
    render,
    settings_of,
    subscription_of,
    tiers_of,
)

router = APIRouter()


@router.get("/")
def overview(request: Request, session: SessionDep, row: PortalDep) -> Response:
    customer = customer_of(session, row)
    subscription = live_subscription(session, customer)
    open_items = _payable(session, customer)
    return render(
        request,
        "overview.html",
        {
            "customer": customer,
            "subscription": subscription,
            "tier": TIER_BY_KEY.get(subscription.tier or "") if subscription else None,
            "tiers": tiers_of(settings_of(request)),
            "payable": open_items,
            "notice": _notice(request.query_params.get("done")),
        },
    )


@router.get("/plans")
def plans(request: Request, session: SessionDep, row: PortalDep) -> Response:
    subscription = subscription_of(session, row)
    promo = promotion_view(request, session, row)
    tiers = tiers_of(settings_of(request))
    discounted(tiers, promo["promotion"])
    return render(request, "plans.html", {"tiers": tiers, "subscription": subscription, **promo})


@router.get("/checkout/{tier}")
def checkout(tier: str, request: Request, session: SessionDep, row: PortalDep) -> Response:
    if tier not in TIER_BY_KEY or not configured_price_ids(settings_of(request))[tier]:
        raise NotFound("No such plan.", code="tier_not_found")
    subscription = subscription_of(session, row)
    if subscription is not None and subscription.status != "incomplete":
        return RedirectResponse(f"{PREFIX}/", status_code=303)
    promo = promotion_view(request, session, row)
    found: promotions.Promotion | None = promo["promotion"]
    plan = TIER_BY_KEY[tier]
    first = found.discounted(plan.unit_amount, plan.currency) if found else None
    return render(request, "checkout.html", {"tier": plan, "first_amount": first, **promo})


@router.get("/card")
def card(request: Request, session: SessionDep, row: PortalDep) -> Response:
    customer = customer_of(session, row)
    return render(request, "card.html", {"customer": customer})


@router.get("/invoices")
def invoices(request: Request, session: SessionDep, row: PortalDep) -> Response:
    rows = session.scalars(
        select(Invoice)
        .where(Invoice.customer_id == row.customer_id)
        .order_by(Invoice.stripe_created.desc())
        .limit(100)
    ).all()
    payments = session.scalars(
        select(Payment)
        .where(Payment.customer_id == row.customer_id)
        .order_by(Payment.stripe_created.desc())
        .limit(100)
    ).all()
    return render(request, "invoices.html", {"invoices": rows, "payments": payments})


@router.get("/invoices/{invoice_id}")
def invoice(invoice_id: str, request: Request, session: SessionDep, row: PortalDep) -> Response:
    found = own_invoice(session, row, invoice_id)
    payment = (
        session.scalars(
            select(Payment).where(Payment.stripe_id == found.payment_intent_id)
        ).one_or_none()
        if found.payment_intent_id
        else None
    )
    return render(request, "receipt.html", {"invoice": found, "payment": payment})


@router.get("/payments/{payment_id}")
def payment(payment_id: str, request: Request, session: SessionDep, row: PortalDep) -> Response:
    found = own_payment(session, row, payment_id)
    return render(request, "receipt.html", {"invoice": None, "payment": found})


def _notice(done: str | None) -> str | None:
    return {
        "subscribed": "Thank you: your subscription is active.",
        "tier": "Your plan was changed.",
        "canceled": "Your subscription will end at the end of the current period.",
        "resumed": "Your subscription will continue.",
        "card": "Your card was saved as the default for future payments.",
        "paid": "Thank you: the payment succeeded.",
    }.get(done or "")


def _payable(session: SessionDep, customer: Customer) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer.stripe_id, Invoice.status == "open")
            .order_by(Invoice.stripe_created.desc())
            .limit(20)
        )
    )
