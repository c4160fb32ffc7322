"""What every portal page shares: templates, rendering, the customer's session, forms.

Pages live in ``paydesk.web.portal.pages`` (one router per page group); this module
has no routes. Every page and action loads the portal session from its cookie
(``PortalDep`` for the whole portal, ``AnySessionDep`` for a pay link too); every
form carries the session's CSRF token (``FormDep``) and every JSON call sends it in
a header (``PortalCallDep``, ``AnyCallDep``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.datastructures import FormData

from paydesk.auth import portal_sessions
from paydesk.billing import promotions
from paydesk.billing.subscriptions import live_subscription
from paydesk.billing.tiers import TIERS, configured_price_ids
from paydesk.db.models import Customer, Invoice, Payment, PortalSession, Subscription
from paydesk.errors import AuthenticationRequired, InvalidInput, NotFound, PermissionDenied
from paydesk.money import Money
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway
from paydesk.web.api.deps import SessionDep, get_gateway

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


def settings_of(request: Request) -> Settings:
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
    settings = settings_of(request)
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


def gateway_of(request: Request) -> StripeGateway:
    return get_gateway(request)


def _check_size(request: Request) -> None:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise InvalidInput("The request body is too large.", code="body_too_large")


def _session_of(request: Request, session: SessionDep) -> PortalSession:
    row = portal_sessions.load(
        session, settings_of(request), request.cookies.get(portal_sessions.COOKIE)
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
        "csrf": portal_sessions.csrf_token(settings_of(request), row),
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


def form_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:200] if isinstance(value, str) else ""


def stripe_id(value: str, prefix: str, field: str) -> str:
    if not value.startswith(prefix) or len(value) > 255 or not set(value) <= _ID_CHARS:
        raise InvalidInput(f"{field} must be a {prefix}… id.", field=field)
    return value


def customer_of(session: SessionDep, row: PortalSession) -> Customer:
    customer = session.scalars(
        select(Customer).where(Customer.stripe_id == row.customer_id)
    ).one_or_none()
    if customer is None or customer.deleted:
        raise NotFound("No such customer.", code="customer_not_found")
    return customer


def subscription_of(session: SessionDep, row: PortalSession) -> Subscription | None:
    return live_subscription(session, customer_of(session, row))


def tiers_of(settings: Settings) -> list[dict[str, Any]]:
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


def promotion_of(
    request: Request, session: SessionDep, row: PortalSession, raw: str | None
) -> promotions.Promotion | None:
    """The promotion code the customer typed (None when blank), or ``InvalidInput``
    on ``promotion_code`` when it cannot be redeemed by them."""
    if raw is None or not raw.strip():
        return None
    found = promotions.find_promotion(gateway_of(request), raw, customer_id=row.customer_id)
    promotions.check_customer(session, found, row.customer_id)
    return found


def promotion_view(request: Request, session: SessionDep, row: PortalSession) -> dict[str, Any]:
    """The ``?promotion_code=`` of a plans or checkout page: the code, or its error."""
    raw = (request.query_params.get("promotion_code") or "")[: promotions.MAX_LENGTH + 1]
    try:
        found = promotion_of(request, session, row, raw)
    except InvalidInput as exc:
        return {"code": raw.strip(), "promotion": None, "promo_error": exc.message}
    return {"code": found.code if found else "", "promotion": found, "promo_error": None}


def discounted(tiers: list[dict[str, Any]], promotion: promotions.Promotion | None) -> None:
    for tier in tiers:
        paid = promotion is not None and tier["amount"] > 0
        tier["discounted"] = (
            promotion.discounted(tier["amount"], tier["currency"]) if promotion and paid else None
        )


def own_invoice(session: SessionDep, row: PortalSession, invoice_id: str) -> Invoice:
    found = session.scalars(
        select(Invoice).where(
            Invoice.stripe_id == invoice_id[:255], Invoice.customer_id == row.customer_id
        )
    ).one_or_none()
    if found is None:
        raise NotFound("No such invoice.", code="invoice_not_found")
    return found


def own_payment(session: SessionDep, row: PortalSession, payment_id: str) -> Payment:
    found = session.scalars(
        select(Payment).where(
            Payment.stripe_id == payment_id[:255], Payment.customer_id == row.customer_id
        )
    ).one_or_none()
    if found is None:
        raise NotFound("No such payment.", code="payment_not_found")
    return found
