"""Console customers: list, search and CSV export; one customer with everything about them,
and the forms to create a payment or a subscription for them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from paydesk import queries
from paydesk.admin_actions import payments as payment_actions
from paydesk.admin_actions import subscriptions as subscription_actions
from paydesk.billing.customers import get_customer
from paydesk.billing.payments import PaymentRequest
from paydesk.billing.subscriptions import live_subscription
from paydesk.billing.tiers import TIER_BY_KEY, TIERS
from paydesk.db.models import Customer, Dispute, Payment, Refund, Subscription
from paydesk.errors import Conflict, InvalidInput, PaydeskError
from paydesk.money import MAXIMUM_AMOUNT, MINIMUM_CHARGE, validate_charge_amount
from paydesk.queries import page
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
    raw_field,
    render,
)
from paydesk.web.errors import status_for

router = APIRouter()

SHOWN = 25  # rows of each kind on a customer's page; the lists link to the rest


@router.get("/customers")
def customers(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    q: str = "",
    cursor: str | None = None,
) -> Response:
    q = q.strip()[:320]
    query = queries.customers(queries.CustomerFilter(q=q))
    rows, next_cursor = page(session, Customer, query, cursor, 25)
    return render(request, "customers.html", {"rows": rows, "next_cursor": next_cursor, "q": q})


@router.get("/customers.csv")
def customers_csv(
    request: Request, session: SessionDep, principal: PrincipalDep, q: str = ""
) -> Response:
    query = queries.customers(queries.CustomerFilter(q=q))

    def rows(session: Session) -> Iterator[tuple[object, ...]]:
        for c in queries.iter_all(session, Customer, query):
            yield (c.stripe_id, c.stripe_created, c.email, c.name, c.user_id)

    return csv_response(
        request, session, "customers", ("id", "created", "email", "name", "user"), rows
    )


# The currencies a console payment may be in: those Stripe lists a minimum charge for.
CURRENCIES: tuple[str, ...] = ("usd", *sorted(c for c in MINIMUM_CHARGE if c != "usd"))
DESCRIPTION_MAX = 1000  # as the Admin API's PaymentCreate


def _detail(
    request: Request,
    session: Session,
    customer: Customer,
    *,
    status: int = 200,
    **extra: object,
) -> Response:
    mine = customer.stripe_id
    payments, more_payments = page(
        session, Payment, queries.payments(queries.PaymentFilter(customer=mine)), None, SHOWN
    )
    subscriptions, more_subscriptions = page(
        session,
        Subscription,
        queries.subscriptions(queries.SubscriptionFilter(customer=mine)),
        None,
        SHOWN,
    )
    refunds, more_refunds = page(
        session, Refund, queries.refunds(queries.RefundFilter(customer=mine)), None, SHOWN
    )
    disputes, more_disputes = page(
        session, Dispute, queries.disputes(queries.DisputeFilter(customer=mine)), None, SHOWN
    )
    related = [mine, *(p.stripe_id for p in payments), *(s.stripe_id for s in subscriptions)]
    events = queries.timeline(session, related)[-50:]
    context: dict[str, object] = {
        "customer": customer,
        "payments": payments,
        "subscriptions": subscriptions,
        "refunds": refunds,
        "disputes": disputes,
        "more": {
            "payments": more_payments is not None,
            "subscriptions": more_subscriptions is not None,
            "refunds": more_refunds is not None,
            "disputes": more_disputes is not None,
        },
        "events": events,
        # Nothing can be created for a customer deleted in Stripe.
        "may_create_payment": not customer.deleted and may(request, payment_actions.CREATE),
        "may_create_subscription": not customer.deleted
        and may(request, subscription_actions.CREATE),
        "may_change_tier": not customer.deleted and may(request, subscription_actions.CHANGE_TIER),
        "live_subscription": live_subscription(session, customer),
        "currencies": CURRENCIES,
        "tiers": TIERS,
        "form_key": secrets.token_hex(16),
        "values": {},
        "form_error": None,
    }
    context.update(extra)
    return render(request, "customer.html", context, status=status)


@router.get("/customers/{customer_id}")
def customer_detail(
    customer_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    return _detail(request, session, get_customer(session, customer_id, include_deleted=True))


def _form_error(form: str, exc: PaydeskError) -> dict[str, str | None]:
    return {"form": form, "field": exc.field, "message": exc.message, "code": exc.code}


def _payment_input(form_amount: str, form_currency: str, description: str) -> tuple[int, str]:
    """The amount in minor units and the currency of the create-payment form, checked."""
    currency = form_currency.lower()
    if currency not in CURRENCIES:
        raise InvalidInput("Currency: choose one of the list.", field="currency")
    amount = parse_amount(form_amount, currency)
    if amount is None:  # blank (a refund's "everything"): a payment needs its amount
        raise InvalidInput("Amount: required, such as 12.50.", field="amount")
    if amount > MAXIMUM_AMOUNT:
        raise InvalidInput(
            f"Amount: at most {format_money(MAXIMUM_AMOUNT, currency)}.", field="amount"
        )
    validate_charge_amount(amount, currency)
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"Description: at most {DESCRIPTION_MAX} characters.", field="description"
        )
    if any(ord(c) < 32 and c not in "\t\n\r" for c in description):
        raise InvalidInput("Description: no control characters.", field="description")
    return amount, currency


@router.post("/customers/{customer_id}/payments")
def create_payment(
    customer_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    """Create a payment for the customer, unconfirmed: they pay it through a pay link."""
    ctx = action_context(request, session, principal)
    ctx.begin(payment_actions.CREATE, customer_id)
    customer = get_customer(session, customer_id)
    confirmed = form_field(form, "confirm") == "yes"
    raw_amount = form_field(form, "amount")
    raw_currency = form_field(form, "currency")
    description = form_field(form, "description")
    try:
        amount, currency = _payment_input(raw_amount, raw_currency, description)
    except PaydeskError as exc:
        if confirmed:
            raise  # the attempt failed: audited, shown on the error page
        # Reviewing is not acting: the form comes back with the error next to its field.
        return _detail(
            request,
            session,
            customer,
            status=status_for(exc),
            form_error=_form_error("payment", exc),
            # Shown back as typed, less NUL characters (no page carries those).
            values={
                "amount": raw_amount[:64].replace("\x00", ""),
                "currency": raw_currency[:8].replace("\x00", ""),
                "description": raw_field(form, "description")[: DESCRIPTION_MAX + 1].replace(
                    "\x00", ""
                ),
            },
        )
    form_key = form_field(form, "form_key")[:64]
    if not confirmed:
        return confirm(
            request,
            title="Confirm payment",
            summary=[
                f"Create a payment of {format_money(amount, currency)} for customer "
                f"{customer.stripe_id}{f' ({customer.email})' if customer.email else ''}.",
                f"Description: {description or 'none'}.",
                "Nothing is charged now: the customer pays it through a pay link, which"
                " the payment's page then offers.",
            ],
            action=f"{PREFIX}/customers/{customer_id}/payments",
            fields={
                "amount": raw_amount,
                "currency": currency,
                "description": description,
                "form_key": form_key,
            },
            button="Create payment",
        )
    outcome = payment_actions.create(
        ctx,
        get_gateway(request),
        customer_id,
        PaymentRequest(
            amount=amount,
            currency=currency,
            request_key=f"console-{form_key or secrets.token_hex(16)}",
            confirm=False,
            description=description or None,
        ),
    )
    return RedirectResponse(
        f"{PREFIX}/payments/{outcome.payment.stripe_id}?done=payment_created", status_code=303
    )


@router.post("/customers/{customer_id}/subscriptions")
def create_subscription(
    customer_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    """Subscribe the customer to a tier (a paid one starts incomplete without a card)."""
    ctx = action_context(request, session, principal)
    ctx.begin(subscription_actions.CREATE, customer_id)
    customer = get_customer(session, customer_id)
    confirmed = form_field(form, "confirm") == "yes"
    tier_key = form_field(form, "tier")
    try:
        tier = TIER_BY_KEY.get(tier_key)
        if tier is None:
            raise InvalidInput("Tier: choose one of the list.", field="tier")
        existing = live_subscription(session, customer)
        if existing is not None:
            raise Conflict(
                f"The customer already has subscription {existing.stripe_id}; change its"
                " tier there instead.",
                code="subscription_exists",
                field="tier",
            )
    except PaydeskError as exc:
        if confirmed:
            raise  # the attempt failed: audited, shown on the error page
        return _detail(
            request,
            session,
            customer,
            status=status_for(exc),
            form_error=_form_error("subscription", exc),
            values={"tier": tier_key[:32].replace("\x00", "")},
        )
    form_key = form_field(form, "form_key")[:64]
    if not confirmed:
        paid = tier.unit_amount > 0
        return confirm(
            request,
            title="Confirm subscription",
            summary=[
                f"Subscribe customer {customer.stripe_id}"
                f"{f' ({customer.email})' if customer.email else ''} to {tier.name}"
                f" ({format_money(tier.unit_amount, tier.currency)} / {tier.interval}).",
                "It starts incomplete: the customer pays its first invoice through a pay"
                " link, which its payment's page offers."
                if paid
                else "The free tier needs no card; it starts active.",
            ],
            action=f"{PREFIX}/customers/{customer_id}/subscriptions",
            fields={"tier": tier.key, "form_key": form_key},
            button="Subscribe",
        )
    outcome = subscription_actions.create(
        ctx,
        get_gateway(request),
        customer_id,
        tier=tier.key,
        request_key=f"console-{form_key or secrets.token_hex(16)}",
    )
    return RedirectResponse(
        f"{PREFIX}/subscriptions/{outcome.subscription.stripe_id}?done=subscription_created",
        status_code=303,
    )
