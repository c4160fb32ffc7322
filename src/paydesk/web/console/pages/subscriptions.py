"""Console subscriptions: list, detail, change tier, cancel, resume."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk import queries
from paydesk.admin_actions import subscriptions as subscription_actions
from paydesk.billing.subscriptions import get_subscription
from paydesk.billing.tiers import TIERS
from paydesk.db.models import Subscription
from paydesk.errors import InvalidInput
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
    format_when,
    render,
)

router = APIRouter()


@router.get("/subscriptions")
def subscriptions(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    tier: str = "",
    q: str = "",
    cursor: str | None = None,
) -> Response:
    q = q.strip()[:320]
    query = queries.subscriptions(queries.SubscriptionFilter(status=status, tier=tier, q=q))
    rows, next_cursor = page(session, Subscription, query, cursor, 25)
    return render(
        request,
        "subscriptions.html",
        {
            "rows": rows,
            "next_cursor": next_cursor,
            "status": status,
            "tier": tier,
            "q": q,
            "tiers": TIERS,
        },
    )


SUBSCRIPTION_COLUMNS = (
    "id",
    "created",
    "customer",
    "tier",
    "status",
    "unit_amount",
    "currency",
    "interval",
    "current_period_end",
    "cancel_at_period_end",
    "canceled_at",
)


@router.get("/subscriptions.csv")
def subscriptions_csv(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    tier: str = "",
    q: str = "",
) -> Response:
    query = queries.subscriptions(queries.SubscriptionFilter(status=status, tier=tier, q=q))

    def rows(session: Session) -> Iterator[tuple[object, ...]]:
        for s in queries.iter_all(session, Subscription, query):
            yield (
                s.stripe_id,
                s.stripe_created,
                s.customer_id,
                s.tier,
                s.status,
                s.unit_amount,
                s.currency,
                s.interval,
                s.current_period_end.isoformat() if s.current_period_end else None,
                s.cancel_at_period_end,
                s.canceled_at.isoformat() if s.canceled_at else None,
            )

    return csv_response(request, session, "subscriptions", SUBSCRIPTION_COLUMNS, rows)


@router.get("/subscriptions/{subscription_id}")
def subscription_detail(
    subscription_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    row = get_subscription(session, subscription_id)
    customer = queries.customer_by_id(session, row.customer_id)
    events = queries.timeline(session, [row.stripe_id])
    return render(
        request,
        "subscription.html",
        {
            "sub": row,
            "customer": customer,
            "tiers": TIERS,
            "events": events,
            "form_key": secrets.token_hex(16),
        },
    )


@router.post("/subscriptions/{subscription_id}/{action}")
def subscription_action(
    subscription_id: str,
    action: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    declared = {
        "tier": subscription_actions.CHANGE_TIER,
        "cancel": subscription_actions.CANCEL,
        "resume": subscription_actions.RESUME,
    }
    if action not in declared:
        raise StarletteHTTPException(404)
    ctx = action_context(request, session, principal)
    ctx.begin(declared[action], subscription_id)
    row = get_subscription(session, subscription_id)
    url = f"{PREFIX}/subscriptions/{subscription_id}/{action}"
    confirmed = form_field(form, "confirm") == "yes"
    if action == "tier":
        tier = form_field(form, "tier")
        if tier not in {t.key for t in TIERS}:
            raise InvalidInput("Choose a tier.", field="tier")
        if not confirmed:
            return confirm(
                request,
                title="Confirm tier change",
                summary=[
                    f"Change {row.stripe_id} from {row.tier or '—'} to {tier}.",
                    "Upgrades are prorated and invoiced now; downgrades credit the rest.",
                ],
                action=url,
                fields={
                    "tier": tier,
                    "form_key": form_field(form, "form_key"),
                    "from": form_field(form, "from")[:16],
                },
                button="Change tier",
            )
        key = form_field(form, "form_key")[:64] or secrets.token_hex(16)
        done = "tier_changed"
        subscription_actions.set_tier(
            ctx, get_gateway(request), subscription_id, tier=tier, request_key=f"console-{key}"
        )
        if form_field(form, "from") == "customer" and row.customer_id:
            # Changed from the customer's page: back there, with the flash.
            return RedirectResponse(
                f"{PREFIX}/customers/{quote(row.customer_id, safe='')}?done={done}",
                status_code=303,
            )
    elif action == "cancel":
        when = form_field(form, "when")
        if when not in ("now", "period_end"):
            raise InvalidInput("Choose when to cancel.", field="when")
        if not confirmed:
            end = format_when(row.current_period_end)
            return confirm(
                request,
                title="Confirm cancellation",
                summary=[
                    f"Cancel {row.stripe_id} "
                    + ("immediately." if when == "now" else f"at the end of the period ({end}).")
                ],
                action=url,
                fields={"when": when},
                button="Cancel subscription",
            )
        done = "cancel_scheduled" if when == "period_end" else "canceled"
        subscription_actions.cancel(
            ctx, get_gateway(request), subscription_id, at_period_end=when == "period_end"
        )
    else:
        if not confirmed:
            return confirm(
                request,
                title="Confirm resume",
                summary=[f"Resume {row.stripe_id}: undo its cancellation at period end."],
                action=url,
                fields={},
                button="Resume",
            )
        done = "resumed"
        subscription_actions.resume(ctx, get_gateway(request), subscription_id)
    return RedirectResponse(
        f"{PREFIX}/subscriptions/{subscription_id}?done={done}", status_code=303
    )
