"""Console customers: list, search and CSV export; one customer with everything about them."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from paydesk import queries
from paydesk.billing.customers import get_customer
from paydesk.db.models import Customer, Dispute, Payment, Refund, Subscription
from paydesk.queries import page
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import PrincipalDep, csv_response, render

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


@router.get("/customers/{customer_id}")
def customer_detail(
    customer_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    customer = get_customer(session, customer_id)
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
    return render(
        request,
        "customer.html",
        {
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
        },
    )
