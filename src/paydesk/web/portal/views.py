"""Customer portal pages and their small JSON API.

A sub-application mounted at ``/portal``. A customer arrives through a single-use
link (``/portal/session/{token}``, from ``POST /api/billing/portal-sessions`` or
an admin pay link) that starts a session scoped to their Stripe customer. Every
page and action loads that session; every form and JSON call carries its CSRF
token. Card data never reaches this server: the browser sends it to Stripe (or the
sandbox) through Stripe.js and this server only sees PaymentMethod, PaymentIntent
and SetupIntent ids, whose outcome it always re-reads from Stripe itself.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import DataError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk.auth import portal_sessions
from paydesk.billing import promotions
from paydesk.billing.mirror import (
    apply_customer,
    apply_invoice,
    apply_payment_intent,
    invoice_subscription_id,
)
from paydesk.billing.subscriptions import (
    cancel_subscription,
    change_tier,
    create_subscription,
    live_subscription,
    refresh_subscription,
    resume_subscription,
)
from paydesk.billing.tiers import TIER_BY_KEY, TIER_RANK, TIERS, configured_price_ids
from paydesk.db.models import Customer, Invoice, Payment, PortalSession, Subscription
from paydesk.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    PaydeskError,
    PaymentFailed,
    PermissionDenied,
)
from paydesk.money import Money
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.web.api.deps import SessionDep, get_gateway
from paydesk.web.errors import error_response, status_for

HERE = Path(__file__).parent
PREFIX = "/portal"
MAX_BODY = 16 * 1024
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# What a customer may pay from the portal (an open invoice, an unfinished payment).
PAYABLE_PAYMENT_STATUSES = ("requires_payment_method", "requires_action", "requires_confirmation")


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return "—"
    return Money(amount, currency).format()


def _day(value: int | datetime | None) -> str:
    if value is None or value == 0:
        return "—"
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, int) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.strftime("%d %b %Y")


_env.filters["money"] = _money
_env.filters["day"] = _day


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def portal_csp(settings: Settings) -> str:
    """The portal's CSP: the console's, plus Stripe.js, its frames and its API.

    No 'unsafe-inline' anywhere. Against the sandbox the Stripe origins are the
    sandbox's; against Stripe they are js.stripe.com, hooks.stripe.com and api.stripe.com.
    """
    if settings.stripe_api_base:
        js = frames = api = _origin(settings.stripe_api_base)
    else:
        js, api = "https://js.stripe.com", "https://api.stripe.com"
        frames = "https://js.stripe.com https://hooks.stripe.com"
    return (
        f"default-src 'self'; script-src 'self' {js}; style-src 'self'; "
        f"img-src 'self' data:; connect-src 'self' {api}; frame-src {frames}; "
        "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """A portal page with the session's CSRF token and the Stripe.js settings."""
    settings = _settings(request)
    # A plain snapshot (taken when the session was loaded): error pages render after
    # the request's database session is closed.
    view: dict[str, Any] | None = getattr(request.state, "portal_view", None)
    body = _env.get_template(template).render(
        request=request,
        prefix=PREFIX,
        portal=view,
        csrf=view["csrf"] if view else "",
        stripe_js=settings.stripe_js_url,
        publishable_key=settings.stripe_publishable_key or "",
        test_mode=settings.key_mode != "live",
        **(context or {}),
    )
    response = HTMLResponse(body, status_code=status)
    response.headers["content-security-policy"] = portal_csp(settings)
    response.headers["cache-control"] = "no-store"
    return response


def _gateway(request: Request) -> StripeGateway:
    return get_gateway(request)


def _check_size(request: Request) -> None:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise InvalidInput("The request body is too large.", code="body_too_large")


def _session_of(request: Request, session: SessionDep) -> PortalSession:
    row = portal_sessions.load(
        session, _settings(request), request.cookies.get(portal_sessions.COOKIE)
    )
    if row is None:
        raise AuthenticationRequired(
            "Your billing session has ended. Open billing again from the app.",
            code="portal_session_expired",
        )
    request.state.portal = row
    request.state.portal_view = {
        "purpose": row.purpose,
        "return_url": row.return_url,
        "csrf": portal_sessions.csrf_token(_settings(request), row),
    }
    return row


def whole_portal(request: Request, session: SessionDep) -> PortalSession:
    """A live session that may use the whole portal (not a single pay link)."""
    _check_size(request)
    row = _session_of(request, session)
    if row.purpose != "portal":
        raise NotFound("No such page.", code="not_found")
    return row


def any_session(request: Request, session: SessionDep) -> PortalSession:
    """A live portal or pay-link session."""
    _check_size(request)
    return _session_of(request, session)


PortalDep = Annotated[PortalSession, Depends(whole_portal)]
AnySessionDep = Annotated[PortalSession, Depends(any_session)]


async def _csrf_form(request: Request) -> FormData:
    form = await request.form(max_files=0, max_fields=20)
    token = form.get("csrf_token")
    _require_csrf(request, token if isinstance(token, str) else None)
    return form


def _require_csrf(request: Request, token: str | None) -> None:
    view: dict[str, Any] | None = getattr(request.state, "portal_view", None)
    if view is None or not portal_sessions.csrf_ok(view["csrf"], token):
        raise PermissionDenied(
            "The form expired or did not come from this page; reload the page and retry.",
            code="csrf_failed",
        )


def csrf_header(request: Request) -> None:
    """JSON calls carry the session's CSRF token in ``X-CSRF-Token``."""
    _require_csrf(request, request.headers.get("x-csrf-token"))


def portal_call(request: Request, row: PortalDep) -> PortalSession:
    """A JSON call of a whole-portal session, with its CSRF header."""
    csrf_header(request)
    return row


def any_call(request: Request, row: AnySessionDep) -> PortalSession:
    """A JSON call of a portal or pay-link session, with its CSRF header."""
    csrf_header(request)
    return row


FormDep = Annotated[FormData, Depends(_csrf_form)]
PortalCallDep = Annotated[PortalSession, Depends(portal_call)]
AnyCallDep = Annotated[PortalSession, Depends(any_call)]


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:200] if isinstance(value, str) else ""


def _stripe_id(value: str, prefix: str, field: str) -> str:
    if not value.startswith(prefix) or len(value) > 255 or not set(value) <= _ID_CHARS:
        raise InvalidInput(f"{field} must be a {prefix}… id.", field=field)
    return value


def _customer(session: SessionDep, row: PortalSession) -> Customer:
    customer = session.scalars(
        select(Customer).where(Customer.stripe_id == row.customer_id)
    ).one_or_none()
    if customer is None or customer.deleted:
        raise NotFound("No such customer.", code="customer_not_found")
    return customer


def _mine(session: SessionDep, row: PortalSession) -> Subscription | None:
    return live_subscription(session, _customer(session, row))


def _tiers(settings: Settings) -> list[dict[str, Any]]:
    prices = configured_price_ids(settings)
    return [
        {
            "key": tier.key,
            "name": tier.name,
            "description": tier.description,
            "amount": tier.unit_amount,
            "currency": tier.currency,
            "available": bool(prices[tier.key]),
        }
        for tier in TIERS
    ]


def _promotion(
    request: Request, session: SessionDep, row: PortalSession, raw: str | None
) -> promotions.Promotion | None:
    """The promotion code the customer typed (None when blank), or ``InvalidInput``
    on ``promotion_code`` when it cannot be redeemed by them."""
    if raw is None or not raw.strip():
        return None
    found = promotions.find_promotion(_gateway(request), raw, customer_id=row.customer_id)
    promotions.check_customer(session, found, row.customer_id)
    return found


def _promotion_view(request: Request, session: SessionDep, row: PortalSession) -> dict[str, Any]:
    """The ``?promotion_code=`` of a plans or checkout page: the code, or its error."""
    raw = (request.query_params.get("promotion_code") or "")[: promotions.MAX_LENGTH + 1]
    try:
        found = _promotion(request, session, row, raw)
    except InvalidInput as exc:
        return {"code": raw.strip(), "promotion": None, "promo_error": exc.message}
    return {"code": found.code if found else "", "promotion": found, "promo_error": None}


def _discounted(tiers: list[dict[str, Any]], promotion: promotions.Promotion | None) -> None:
    for tier in tiers:
        paid = promotion is not None and tier["amount"] > 0
        tier["discounted"] = (
            promotion.discounted(tier["amount"], tier["currency"]) if promotion and paid else None
        )


def _intent_id(client_secret: str | None) -> str | None:
    if not client_secret or "_secret_" not in client_secret:
        return None
    return client_secret.split("_secret_", 1)[0]


# --- JSON bodies -----------------------------------------------------------------


class SubscribeBody(BaseModel):
    """Subscribe to ``tier`` with the card Stripe.js just created."""

    tier: Annotated[str, Field(max_length=32)]
    payment_method: Annotated[str, Field(max_length=255)]
    promotion_code: Annotated[str | None, Field(max_length=MAX_BODY)] = None


class IntentBody(BaseModel):
    """A SetupIntent or PaymentIntent id the browser finished with."""

    intent: Annotated[str, Field(max_length=255)]


# --- errors ----------------------------------------------------------------------


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(f"{PREFIX}/api/") or request.url.path.startswith("/api/")


async def _paydesk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PaydeskError)
    status = status_for(exc)
    if _wants_json(request):
        return error_response(request, status, exc.code, exc.message, exc.field, **exc.details)
    return render(
        request,
        "error.html",
        {"message": exc.message, "code": exc.code, "status": status},
        status=status,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    refused = (
        NotFound("No such page.", code="not_found")
        if exc.status_code == 404
        else InvalidInput(str(exc.detail), code="bad_request")
    )
    if exc.status_code not in (404, 422):
        status = exc.status_code
        if _wants_json(request):
            return error_response(request, status, "http_error", str(exc.detail))
        return render(request, "error.html", {"message": str(exc.detail)}, status=status)
    return await _paydesk_error(request, refused)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return await _paydesk_error(request, InvalidInput("The request is not valid."))


async def _data_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DataError)
    return await _paydesk_error(request, InvalidInput("A value of the request cannot be used."))


# --- the app ---------------------------------------------------------------------


def build_portal(parent: FastAPI) -> FastAPI:
    """The portal app; ``parent`` shares its settings, database and gateway."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = parent.state.settings
    app.state.sessions = parent.state.sessions
    app.state.gateway = parent.state.gateway
    app.add_exception_handler(PaydeskError, _paydesk_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _session_routes(app)
    _page_routes(app)
    _action_routes(app)
    _payment_routes(app)
    return app


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or _settings(request).env != "development"


def _session_routes(app: FastAPI) -> None:
    @app.get("/session/{token}")
    def open_session(token: str, request: Request, session: SessionDep) -> Response:
        opened = portal_sessions.open_link(session, _settings(request), token)
        if opened is None:
            raise NotFound(
                "This billing link has expired or was already used. "
                "Open billing again from the app, or ask for a new link.",
                code="portal_link_invalid",
            )
        row, cookie = opened
        target = f"{PREFIX}/" if row.purpose == "portal" else f"{PREFIX}/pay/{row.target}"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            portal_sessions.COOKIE,
            cookie,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        response.headers["referrer-policy"] = "no-referrer"
        return response

    @app.post("/logout")
    def logout(request: Request, row: AnySessionDep, form: FormDep) -> Response:
        portal_sessions.end(row)
        target = row.return_url or f"{PREFIX}/signed-out"
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(portal_sessions.COOKIE, path=PREFIX)
        return response

    @app.get("/signed-out")
    def signed_out(request: Request) -> Response:
        return render(request, "signed_out.html")


def _page_routes(app: FastAPI) -> None:
    @app.get("/")
    def overview(request: Request, session: SessionDep, row: PortalDep) -> Response:
        customer = _customer(session, row)
        subscription = live_subscription(session, customer)
        open_items = _payable(session, customer)
        return render(
            request,
            "overview.html",
            {
                "customer": customer,
                "subscription": subscription,
                "tier": TIER_BY_KEY.get(subscription.tier or "") if subscription else None,
                "tiers": _tiers(_settings(request)),
                "payable": open_items,
                "notice": _notice(request.query_params.get("done")),
            },
        )

    @app.get("/plans")
    def plans(request: Request, session: SessionDep, row: PortalDep) -> Response:
        subscription = _mine(session, row)
        promo = _promotion_view(request, session, row)
        tiers = _tiers(_settings(request))
        _discounted(tiers, promo["promotion"])
        return render(
            request, "plans.html", {"tiers": tiers, "subscription": subscription, **promo}
        )

    @app.get("/checkout/{tier}")
    def checkout(tier: str, request: Request, session: SessionDep, row: PortalDep) -> Response:
        if tier not in TIER_BY_KEY or not configured_price_ids(_settings(request))[tier]:
            raise NotFound("No such plan.", code="tier_not_found")
        subscription = _mine(session, row)
        if subscription is not None and subscription.status != "incomplete":
            return RedirectResponse(f"{PREFIX}/", status_code=303)
        promo = _promotion_view(request, session, row)
        found: promotions.Promotion | None = promo["promotion"]
        plan = TIER_BY_KEY[tier]
        first = found.discounted(plan.unit_amount, plan.currency) if found else None
        return render(request, "checkout.html", {"tier": plan, "first_amount": first, **promo})

    @app.get("/card")
    def card(request: Request, session: SessionDep, row: PortalDep) -> Response:
        customer = _customer(session, row)
        return render(request, "card.html", {"customer": customer})

    @app.get("/invoices")
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

    @app.get("/invoices/{invoice_id}")
    def invoice(invoice_id: str, request: Request, session: SessionDep, row: PortalDep) -> Response:
        found = _own_invoice(session, row, invoice_id)
        payment = (
            session.scalars(
                select(Payment).where(Payment.stripe_id == found.payment_intent_id)
            ).one_or_none()
            if found.payment_intent_id
            else None
        )
        return render(request, "receipt.html", {"invoice": found, "payment": payment})

    @app.get("/payments/{payment_id}")
    def payment(payment_id: str, request: Request, session: SessionDep, row: PortalDep) -> Response:
        found = _own_payment(session, row, payment_id)
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


def _own_invoice(session: SessionDep, row: PortalSession, invoice_id: str) -> Invoice:
    found = session.scalars(
        select(Invoice).where(
            Invoice.stripe_id == invoice_id[:255], Invoice.customer_id == row.customer_id
        )
    ).one_or_none()
    if found is None:
        raise NotFound("No such invoice.", code="invoice_not_found")
    return found


def _own_payment(session: SessionDep, row: PortalSession, payment_id: str) -> Payment:
    found = session.scalars(
        select(Payment).where(
            Payment.stripe_id == payment_id[:255], Payment.customer_id == row.customer_id
        )
    ).one_or_none()
    if found is None:
        raise NotFound("No such payment.", code="payment_not_found")
    return found


def _action_routes(app: FastAPI) -> None:
    @app.post("/tier/preview")
    def preview_tier(
        request: Request, session: SessionDep, row: PortalDep, form: FormDep
    ) -> Response:
        settings = _settings(request)
        tier = _field(form, "tier")
        subscription = _mine(session, row)
        if subscription is None or subscription.item_id is None:
            raise Conflict("You have no subscription to change.", code="subscription_not_found")
        price = configured_price_ids(settings).get(tier) if tier in TIER_BY_KEY else None
        if price is None:
            raise InvalidInput("Choose one of the plans.", field="tier")
        if subscription.tier == tier:
            raise Conflict(f"You are already on {TIER_BY_KEY[tier].name}.", code="same_tier")
        upgrade = TIER_RANK[tier] > TIER_RANK.get(subscription.tier or "", -1)
        preview = _gateway(request).preview_invoice(
            {
                "customer": subscription.customer_id,
                "subscription": subscription.stripe_id,
                "subscription_details": {
                    "items": [{"id": subscription.item_id, "price": price}],
                    "proration_behavior": "always_invoice" if upgrade else "create_prorations",
                },
            }
        )
        lines = [
            {"description": line.get("description"), "amount": line.get("amount", 0)}
            for line in (preview.get("lines") or {}).get("data", [])
        ]
        return render(
            request,
            "confirm_tier.html",
            {
                "tier": TIER_BY_KEY[tier],
                "current": TIER_BY_KEY.get(subscription.tier or ""),
                "upgrade": upgrade,
                "lines": lines,
                "total": preview.get("total", preview.get("amount_due", 0)),
                "currency": preview.get("currency", subscription.currency),
                "subscription": subscription,
            },
        )

    @app.post("/tier")
    def change(request: Request, session: SessionDep, row: PortalDep, form: FormDep) -> Response:
        subscription = _mine(session, row)
        if subscription is None:
            raise Conflict("You have no subscription to change.", code="subscription_not_found")
        change_tier(
            session,
            _gateway(request),
            _settings(request),
            subscription.stripe_id,
            tier=_field(form, "tier"),
            request_key=_field(form, "request_key") or uuid.uuid4().hex,
        )
        return RedirectResponse(f"{PREFIX}/?done=tier", status_code=303)

    @app.post("/cancel")
    def cancel(request: Request, session: SessionDep, row: PortalDep, form: FormDep) -> Response:
        subscription = _mine(session, row)
        if subscription is None:
            raise Conflict("You have no subscription to cancel.", code="subscription_not_found")
        cancel_subscription(
            session,
            _gateway(request),
            _settings(request),
            subscription.stripe_id,
            at_period_end=True,
        )
        return RedirectResponse(f"{PREFIX}/?done=canceled", status_code=303)

    @app.post("/resume")
    def resume(request: Request, session: SessionDep, row: PortalDep, form: FormDep) -> Response:
        subscription = _mine(session, row)
        if subscription is None:
            raise Conflict("You have no subscription to resume.", code="subscription_not_found")
        resume_subscription(session, _gateway(request), _settings(request), subscription.stripe_id)
        return RedirectResponse(f"{PREFIX}/?done=resumed", status_code=303)


def _payment_routes(app: FastAPI) -> None:
    @app.post("/api/subscribe")
    def subscribe(
        body: SubscribeBody, request: Request, session: SessionDep, row: PortalCallDep
    ) -> JSONResponse:
        """Subscribe with a card PaymentMethod; says what the browser must do next."""
        settings = _settings(request)
        gateway = _gateway(request)
        customer = _customer(session, row)
        pm = _stripe_id(body.payment_method, "pm_", "payment_method")
        existing = live_subscription(session, customer)
        if existing is not None and existing.status == "incomplete" and existing.tier == body.tier:
            # A first payment that failed or awaits authentication: retry it with this card.
            # Its subscription was created with the code it was given then (whose
            # redemption is already counted), so the code is not looked at again.
            outcome_row = refresh_subscription(session, gateway, settings, existing.stripe_id)
            return _next_step(session, gateway, settings, customer, outcome_row, pm)
        if existing is not None and existing.status != "incomplete":
            raise Conflict("You already have a subscription.", code="subscription_exists")
        # Checked before anything is changed: a refused code is shown next to its field.
        promotion = _promotion(request, session, row, body.promotion_code)
        if existing is not None:
            # Another plan now: the unpaid attempt at the first one is dropped.
            cancel_subscription(session, gateway, settings, existing.stripe_id, at_period_end=False)
        # A card that is refused is refused when it is attached, before anything is created.
        outcome = create_subscription(
            session,
            gateway,
            settings,
            customer,
            tier=body.tier,
            request_key=f"{row.id}-{pm}",
            payment_method=pm,
            promotion=promotion,
        )
        return _next_step(session, gateway, settings, customer, outcome.subscription, None)

    @app.post("/api/subscription/refresh")
    def refresh(request: Request, session: SessionDep, row: PortalCallDep) -> JSONResponse:
        """Re-read the customer's subscription from Stripe (never the browser's word)."""
        subscription = _mine(session, row)
        if subscription is None:
            raise NotFound("You have no subscription.", code="subscription_not_found")
        fresh = refresh_subscription(
            session, _gateway(request), _settings(request), subscription.stripe_id
        )
        return JSONResponse({"status": fresh.status, "tier": fresh.tier})

    @app.post("/api/setup-intent")
    def setup_intent(request: Request, session: SessionDep, row: PortalCallDep) -> JSONResponse:
        """A SetupIntent for a new default card; the browser confirms it with Stripe.js."""
        customer = _customer(session, row)
        intent = _gateway(request).create_setup_intent(
            {
                "customer": customer.stripe_id,
                "usage": "off_session",
                "allowed_payment_method_types": ["card"],
            },
            key=operation_key("portal-setup", row.id, time.time_ns()),
        )
        return JSONResponse({"client_secret": intent["client_secret"]})

    @app.post("/api/card")
    def save_card(
        body: IntentBody, request: Request, session: SessionDep, row: PortalCallDep
    ) -> JSONResponse:
        """Make the card of a succeeded SetupIntent the default (checked with Stripe)."""
        gateway = _gateway(request)
        intent = gateway.retrieve_setup_intent(_stripe_id(body.intent, "seti_", "intent"))
        if intent.get("customer") != row.customer_id:
            raise NotFound("No such setup.", code="setup_intent_not_found")
        if intent.get("status") != "succeeded" or not intent.get("payment_method"):
            raise PaymentFailed(
                "The card was not saved: it was not authenticated.", code="setup_incomplete"
            )
        pm = str(intent["payment_method"])
        updated = gateway.set_default_payment_method(
            row.customer_id, pm, key=operation_key("default-pm", row.customer_id, pm)
        )
        apply_customer(session, updated, int(time.time()))
        subscription = _mine(session, row)
        if subscription is not None:
            gateway.update_subscription(
                subscription.stripe_id,
                {"default_payment_method": pm},
                key=operation_key("sub-default-pm", subscription.stripe_id, pm),
            )
            refresh_subscription(session, gateway, _settings(request), subscription.stripe_id)
        return JSONResponse({"status": "saved"})

    @app.get("/pay/{target}")
    def pay_page(
        target: str, request: Request, session: SessionDep, row: AnySessionDep
    ) -> Response:
        item = _payable_item(request, session, row, target)
        return render(request, "pay.html", item)

    @app.post("/api/pay/{target}")
    def pay(target: str, request: Request, session: SessionDep, row: AnyCallDep) -> JSONResponse:
        """The client secret that pays ``target`` (an open invoice or unfinished payment)."""
        item = _payable_item(request, session, row, target)
        if not item["client_secret"]:
            raise Conflict("This has nothing left to pay.", code="nothing_to_pay")
        return JSONResponse({"client_secret": item["client_secret"]})

    @app.post("/api/pay/{target}/refresh")
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
    gateway = _gateway(request)
    settings = _settings(request)
    now = int(time.time())
    if target.startswith("in_"):
        _own_invoice(session, row, target)
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
        _own_payment(session, row, target)
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


def _next_step(
    session: SessionDep,
    gateway: StripeGateway,
    settings: Settings,
    customer: Customer,
    subscription: Subscription,
    new_card: str | None,
) -> JSONResponse:
    """What the browser does after subscribing: done, authenticate, or try the card."""
    if subscription.status in ("active", "trialing"):
        return JSONResponse({"status": "active"})
    invoice_id = subscription.latest_invoice_id
    if not invoice_id:
        return JSONResponse({"status": subscription.status})
    invoice = gateway.retrieve_open_invoice(invoice_id)
    apply_invoice(session, invoice, int(time.time()))
    secret = (invoice.get("confirmation_secret") or {}).get("client_secret")
    intent_id = _intent_id(secret)
    if not secret or intent_id is None:
        return JSONResponse({"status": subscription.status})
    intent = gateway.retrieve_payment_intent(intent_id)
    if new_card is not None:
        # Retry with the new card: the browser confirms the invoice's payment with it.
        attached = gateway.attach_payment_method(
            new_card, customer.stripe_id, key=operation_key("attach", customer.stripe_id, new_card)
        )
        updated = gateway.set_default_payment_method(
            customer.stripe_id,
            attached["id"],
            key=operation_key("default-pm", customer.stripe_id, attached["id"]),
        )
        apply_customer(session, updated, int(time.time()))
        return JSONResponse(
            {"status": "confirm", "client_secret": secret, "payment_method": attached["id"]}
        )
    if intent.get("status") == "requires_action":
        return JSONResponse({"status": "requires_action", "client_secret": secret})
    error = intent.get("last_payment_error") or {}
    return JSONResponse(
        {
            "status": "declined",
            "error": {
                "code": error.get("code"),
                "decline_code": error.get("decline_code"),
                "message": error.get("message") or "Your card was declined.",
            },
        },
        status_code=402,
    )
