"""Console pages and actions.

A sub-application mounted at ``/admin`` so its errors render as HTML pages while
the Admin API keeps JSON; the status codes still come from ``paydesk.web.errors``.
Every page requires a fully signed-in session (password, then TOTP where the
role requires it); every form carries a CSRF token; every mutation goes through
``paydesk.auth.actions`` (the same permission checks and audit entries as the
Admin API) and asks for confirmation first.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import func, or_, select
from sqlalchemy.exc import DataError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk.auth import accounts, actions, audit, roles, tokens
from paydesk.auth import sessions as admin_sessions
from paydesk.auth.accounts import Principal
from paydesk.auth.roles import Permission
from paydesk.billing.payments import get_payment
from paydesk.billing.refunds import REASONS, RefundRequest
from paydesk.billing.subscriptions import get_subscription
from paydesk.billing.tiers import TIERS
from paydesk.db.models import (
    AdminUser,
    Customer,
    Dispute,
    Payment,
    Refund,
    StripeEvent,
    Subscription,
)
from paydesk.errors import InvalidInput, PaydeskError, PermissionDenied
from paydesk.money import MAXIMUM_AMOUNT, Money, decimals
from paydesk.settings import Settings
from paydesk.web.api.admin_auth import AuditFailures, intend
from paydesk.web.api.admin_payments import payments_matching
from paydesk.web.api.deps import SessionDep, get_gateway
from paydesk.web.api.pagination import page
from paydesk.web.console import charts, dashboard
from paydesk.web.errors import status_for
from paydesk.webhooks import operations

HERE = Path(__file__).parent
PREFIX = "/admin"
KEY_ROTATION_DAYS = 90
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class Redirect(Exception):
    """Leave the page for ``location`` (e.g. the sign-in page)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return "—"
    return Money(amount, currency).format()


def _when(value: int | datetime | None) -> str:
    if value is None or value == 0:
        return "—"
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, int) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


_env.filters["money"] = _money
_env.filters["when"] = _when


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _live(request: Request) -> bool:
    return _settings(request).key_mode == "live"


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


def _csrf_cookie(request: Request) -> str:
    existing = request.cookies.get(admin_sessions.CSRF_COOKIE)
    if existing and 16 <= len(existing) <= 64:
        return existing
    fresh: str | None = getattr(request.state, "new_csrf", None)
    if fresh is None:
        fresh = admin_sessions.new_csrf_cookie()
        request.state.new_csrf = fresh
    return fresh


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or _settings(request).env != "development"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    principal: Principal | None = None,
) -> HTMLResponse:
    """A page, with the TEST/LIVE badge, navigation and a CSRF token for its forms."""
    settings = _settings(request)
    principal = principal or getattr(request.state, "principal", None)
    csrf_cookie = _csrf_cookie(request)
    live = settings.key_mode == "live"
    body = _env.get_template(template).render(
        request=request,
        prefix=PREFIX,
        principal=principal,
        mode="LIVE" if live else "TEST",
        csrf=admin_sessions.csrf_token(settings, csrf_cookie),
        can=lambda permission: (
            principal is not None and roles.can(principal.role, Permission(permission), live=live)
        ),
        **(context or {}),
    )
    response = HTMLResponse(body, status_code=status)
    if getattr(request.state, "new_csrf", None):
        response.set_cookie(
            admin_sessions.CSRF_COOKIE,
            csrf_cookie,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
    return response


def _set_session_cookie(request: Request, response: Response, raw: str) -> None:
    response.set_cookie(
        admin_sessions.COOKIE,
        raw,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def signed_in(request: Request, session: SessionDep) -> Principal:
    """The admin of a fully signed-in session, or a redirect to the sign-in page."""
    loaded = admin_sessions.load(
        session, _settings(request), request.cookies.get(admin_sessions.COOKIE)
    )
    if loaded is None or loaded.row.stage != "full":
        raise Redirect(f"{PREFIX}/login")
    principal = loaded.principal()
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(signed_in)]


async def csrf_form(request: Request) -> FormData:
    """The posted form, after checking its CSRF token against the cookie."""
    form = await request.form()
    token = form.get("csrf_token")
    if not admin_sessions.csrf_ok(
        _settings(request),
        request.cookies.get(admin_sessions.CSRF_COOKIE),
        token if isinstance(token, str) else None,
    ):
        raise PermissionDenied(
            "The form expired or did not come from this console; reload the page and retry.",
            code="csrf_failed",
        )
    return form


FormDep = Annotated[FormData, Depends(csrf_form)]


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _raw(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _ctx(request: Request, session: SessionDep, principal: Principal) -> actions.Context:
    return actions.Context(session, _settings(request), principal, _source(request), "console")


def _need(request: Request, principal: Principal, permission: Permission) -> None:
    roles.check(principal.role, permission, live=_live(request))


def _attempt(request: Request, action: str, target: str | None) -> None:
    """Name the mutation this form attempts: its refusal or failure is audited under it."""
    intend(request, action, target, via="console")


def _confirm(
    request: Request,
    *,
    title: str,
    summary: list[str],
    action: str,
    fields: dict[str, str],
    button: str,
) -> HTMLResponse:
    return render(
        request,
        "confirm.html",
        {"title": title, "summary": summary, "action": action, "fields": fields, "button": button},
    )


# --- errors -------------------------------------------------------------------


async def _paydesk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PaydeskError)
    return render(
        request,
        "error.html",
        {
            "message": exc.message,
            "code": exc.code,
            "stripe_request_id": exc.details.get("stripe_request_id"),
            "request_id": getattr(request.state, "request_id", None),
        },
        status=status_for(exc),
    )


async def _data_error(request: Request, exc: Exception) -> Response:
    # The database refused a value of the request (a NUL character in a PostgreSQL
    # string, a number out of range): the request's fault, shown like any invalid input.
    assert isinstance(exc, DataError)
    refused = InvalidInput("A value of the request cannot be used (e.g. a NUL character).")
    return await _paydesk_error(request, refused)


async def _redirect(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Redirect)
    return RedirectResponse(exc.location, status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = "No such page." if exc.status_code == 404 else str(exc.detail)
    return render(
        request, "error.html", {"message": message, "code": "http_error"}, status=exc.status_code
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    message = str(problems[0].get("msg", "Invalid input.")) if problems else "Invalid input."
    return render(request, "error.html", {"message": message, "code": "invalid_input"}, status=422)


# --- the app --------------------------------------------------------------------


def build_console(parent: FastAPI) -> FastAPI:
    """The console app; ``parent`` shares its settings, database and gateway."""
    # AuditFailures: a form's mutation that fails (or is refused) is audited too.
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, dependencies=[AuditFailures])
    app.state.settings = parent.state.settings
    app.state.sessions = parent.state.sessions
    app.state.gateway = parent.state.gateway
    app.add_exception_handler(PaydeskError, _paydesk_error)
    app.add_exception_handler(Redirect, _redirect)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _sign_in_routes(app)
    _business_routes(app)
    _operations_routes(app)
    _access_routes(app)
    return app


_PASSWORD_RULES = {
    "min_length": accounts.MIN_PASSWORD_LENGTH,
    "max_length": accounts.MAX_PASSWORD_LENGTH,
}


def _sign_in_routes(app: FastAPI) -> None:
    @app.get("/login")
    def login_page(request: Request) -> Response:
        return render(request, "login.html")

    @app.post("/login")
    def login(request: Request, session: SessionDep, form: FormDep) -> Response:
        settings = _settings(request)
        try:
            user = accounts.check_password(
                session,
                settings,
                _field(form, "email"),
                _raw(form, "password"),  # passwords keep their spaces
                source_address=_source(request),
            )
        except PaydeskError as exc:
            # Commit the audited failure (and the lockout count) despite the refusal.
            session.commit()
            return render(request, "login.html", {"error": exc.message}, status=status_for(exc))
        if user.totp_enabled:
            stage = "password"
        elif roles.require_two_factor(user.role):
            stage = "enrol"
        else:
            stage = "full"
            accounts.signed_in(session, settings, user, method="password", source=_source(request))
        raw = admin_sessions.start(
            session,
            settings,
            user,
            stage=stage,
            source_address=_source(request),
            user_agent=request.headers.get("user-agent"),
        )
        target = {"password": "/2fa", "enrol": "/enrol", "full": ""}[stage]
        response = RedirectResponse(f"{PREFIX}{target}", status_code=303)
        _set_session_cookie(request, response, raw)
        return response

    def pending(request: Request, session: SessionDep, stage: str) -> admin_sessions.LoadedSession:
        loaded = admin_sessions.load(
            session, _settings(request), request.cookies.get(admin_sessions.COOKIE)
        )
        if loaded is None or loaded.row.stage != stage:
            raise Redirect(f"{PREFIX}/login")
        return loaded

    @app.get("/2fa")
    def second_factor_page(request: Request, session: SessionDep) -> Response:
        pending(request, session, "password")
        return render(request, "two_factor.html")

    @app.post("/2fa")
    def second_factor(request: Request, session: SessionDep, form: FormDep) -> Response:
        settings = _settings(request)
        loaded = pending(request, session, "password")
        user = loaded.user
        try:
            method = accounts.check_second_factor(
                session,
                settings,
                user,
                code=_field(form, "code"),
                recovery_code=_field(form, "recovery_code"),
                source_address=_source(request),
            )
        except PaydeskError as exc:
            # Commit the audited failure (and the lockout count) despite the refusal.
            session.commit()
            return render(
                request, "two_factor.html", {"error": exc.message}, status=status_for(exc)
            )
        accounts.signed_in(session, settings, user, method=method, source=_source(request))
        raw = admin_sessions.promote(session, settings, loaded, stage="full")
        response = RedirectResponse(f"{PREFIX}", status_code=303)
        _set_session_cookie(request, response, raw)
        return response

    @app.get("/enrol")
    def enrol_page(request: Request, session: SessionDep) -> Response:
        settings = _settings(request)
        loaded = pending(request, session, "enrol")
        # The same seed on every load of this session (a reload must not invalidate what
        # was just scanned); another sign-in gets another one.
        seed = accounts.start_enrolment(
            settings, loaded.user, seed=accounts.enrolment_seed(settings, loaded.row.digest)
        )
        uri = accounts.provisioning_uri(seed, loaded.user.email)
        return render(
            request,
            "enrol.html",
            {"seed": seed, "qr": accounts.qr_svg(uri), "email": loaded.user.email},
        )

    @app.post("/enrol")
    def enrol(request: Request, session: SessionDep, form: FormDep) -> Response:
        settings = _settings(request)
        loaded = pending(request, session, "enrol")
        user = loaded.user
        # Check the code against this session's seed, whichever session stored one last.
        seed = accounts.start_enrolment(
            settings, user, seed=accounts.enrolment_seed(settings, loaded.row.digest)
        )
        if not accounts.enable_two_factor(settings, user, _field(form, "code")):
            uri = accounts.provisioning_uri(seed, user.email)
            return render(
                request,
                "enrol.html",
                {
                    "seed": seed,
                    "qr": accounts.qr_svg(uri),
                    "email": user.email,
                    "error": "That code did not match; check your device's clock and retry.",
                },
                status=422,
            )
        codes = accounts.issue_recovery_codes(session, settings, user)
        audit.record(
            session,
            settings,
            actor=user.email,
            action="admin.enrol_2fa",
            target=user.email,
            source_address=_source(request),
        )
        accounts.signed_in(
            session, settings, user, method="totp_enrolment", source=_source(request)
        )
        raw = admin_sessions.promote(session, settings, loaded, stage="full")
        response = render(request, "recovery_codes.html", {"codes": codes})
        _set_session_cookie(request, response, raw)
        return response

    @app.get("/password")
    def password_page(request: Request, principal: PrincipalDep, changed: int = 0) -> Response:
        return render(request, "password.html", {**_PASSWORD_RULES, "changed": changed})

    @app.post("/password")
    def change_password(
        request: Request, session: SessionDep, principal: PrincipalDep, form: FormDep
    ) -> Response:
        settings = _settings(request)
        user = accounts.get_admin(session, principal.user_id)
        try:
            accounts.change_password(
                session,
                settings,
                user,
                # Passwords keep their spaces.
                current=_raw(form, "current_password"),
                new=_raw(form, "new_password"),
                repeated=_raw(form, "new_password_repeat"),
                keep_session_id=principal.credential_id,
                source_address=_source(request),
            )
        except PaydeskError as exc:
            # Audited here, in the request's transaction, which is committed despite the
            # refusal: the wrong-password count must hold (like a failed sign-in).
            audit.record(
                session,
                settings,
                actor=principal.actor,
                action="admin.change_password",
                target=principal.email,
                outcome=audit.FAILURE,
                after={**audit.failure_details(exc), "via": "console"},
                source_address=_source(request),
            )
            session.commit()
            if accounts.locked(user):
                # Too many wrong current passwords: the lockout ended this session too.
                response = RedirectResponse(f"{PREFIX}/login", status_code=303)
                response.delete_cookie(admin_sessions.COOKIE, path=PREFIX)
                return response
            return render(
                request,
                "password.html",
                {**_PASSWORD_RULES, "error": exc.message, "field": exc.field},
                status=status_for(exc),
            )
        return RedirectResponse(f"{PREFIX}/password?changed=1", status_code=303)

    @app.post("/logout")
    def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
        loaded = admin_sessions.load(
            session, _settings(request), request.cookies.get(admin_sessions.COOKIE)
        )
        if loaded is not None:
            admin_sessions.end(loaded)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(admin_sessions.COOKIE, path=PREFIX)
        return response


def _parse_amount(raw: str, currency: str) -> int | None:
    """Major units as typed ("12.50") to minor units; blank means the full amount."""
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise InvalidInput("Amount: expected a number such as 12.50.", field="amount") from exc
    # NaN would make the comparisons below raise; 1e999999999 would become an integer of a
    # billion digits. No refund is larger than Stripe's largest charge.
    if not value.is_finite() or abs(value) > MAXIMUM_AMOUNT:
        raise InvalidInput("Amount: expected a number such as 12.50.", field="amount")
    minor = value * (10 ** decimals(currency))
    if value <= 0 or minor != minor.to_integral_value():
        raise InvalidInput("Amount: a positive amount in the currency's units.", field="amount")
    return int(minor)


def _business_routes(app: FastAPI) -> None:
    @app.get("")
    @app.get("/")
    def home(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
        board = dashboard.build(session)
        charts_html = [
            charts.bar_chart(
                "MRR by month (USD)",
                board.labels,
                [charts.Series("MRR", board.mrr, "s1")],
            ),
            charts.bar_chart(
                "MRR movements (USD): new + expansion vs churn + contraction",
                board.labels,
                [
                    charts.Series("New + expansion", board.new_mrr, "s2"),
                    charts.Series("Churn + contraction", board.churned_mrr, "s3"),
                ],
            ),
            charts.bar_chart(
                "Payments",
                board.labels,
                [
                    charts.Series("Succeeded", board.succeeded, "s2"),
                    charts.Series("Failed", board.failed, "s3"),
                ],
            ),
            charts.bar_chart(
                "Refunds (USD)", board.labels, [charts.Series("Refunded", board.refunded, "s4")]
            ),
            charts.bar_chart(
                "Disputes opened", board.labels, [charts.Series("Disputes", board.disputes, "s3")]
            ),
        ]
        return render(request, "dashboard.html", {"board": board, "charts": charts_html})

    @app.get("/payments")
    def payments(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        status: str = "",
        q: str = "",
        cursor: str | None = None,
    ) -> Response:
        query = select(Payment)
        if status:
            query = query.where(Payment.status == status[:32])
        if q:
            q = q.strip()[:320]
            query = query.where(Payment.id.in_(payments_matching(q, customer_id=True)))
        rows, next_cursor = page(session, Payment, query, cursor, 25)
        context = {"rows": rows, "next_cursor": next_cursor, "status": status, "q": q}
        template = "payments_rows.html" if request.headers.get("hx-request") else "payments.html"
        return render(request, template, context)

    @app.get("/payments/{payment_id}")
    def payment_detail(
        payment_id: str, request: Request, session: SessionDep, principal: PrincipalDep
    ) -> Response:
        payment = get_payment(session, payment_id)
        refunds = list(
            session.scalars(
                select(Refund)
                .where(Refund.payment_intent_id == payment.stripe_id)
                .order_by(Refund.stripe_created)
            )
        )
        related = [payment.stripe_id, *(r.stripe_id for r in refunds)]
        if payment.latest_charge_id:
            related.append(payment.latest_charge_id)
        events = list(
            session.scalars(
                select(StripeEvent)
                .where(StripeEvent.object_id.in_(related))
                .order_by(StripeEvent.created, StripeEvent.id)
            )
        )
        customer = session.scalars(
            select(Customer).where(Customer.stripe_id == payment.customer_id)
        ).first()
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

    @app.post("/payments/{payment_id}/refund")
    def refund(
        payment_id: str,
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        form: FormDep,
    ) -> Response:
        _attempt(request, "refund.create", payment_id)
        _need(request, principal, Permission.REFUNDS_CREATE)
        payment = get_payment(session, payment_id)
        amount = _parse_amount(_field(form, "amount"), payment.currency)
        reason = _field(form, "reason") or None
        if reason is not None and reason not in REASONS:
            raise InvalidInput("Unknown refund reason.", field="reason")
        note = _field(form, "note")[:2000] or None
        shown = amount if amount is not None else payment.amount_received - payment.amount_refunded
        if _field(form, "confirm") != "yes":
            return _confirm(
                request,
                title="Confirm refund",
                summary=[
                    f"Refund {_money(shown, payment.currency)}"
                    f"{' (full remaining amount)' if amount is None else ''} "
                    f"of payment {payment.stripe_id}.",
                    f"Reason: {reason or 'none'}.",
                    "This returns money to the customer and cannot be undone.",
                ],
                action=f"{PREFIX}/payments/{payment_id}/refund",
                fields={
                    "amount": _field(form, "amount"),
                    "reason": reason or "",
                    "note": note or "",
                    "form_key": _field(form, "form_key"),
                },
                button="Refund",
            )
        row = actions.refund(
            _ctx(request, session, principal),
            get_gateway(request),
            RefundRequest(
                payment_id=payment_id,
                requested_by=principal.actor,
                amount=amount,
                reason=reason,
                note=note,
                request_key=f"console-{_field(form, 'form_key')[:64]}"
                if _field(form, "form_key")
                else None,
            ),
        )
        return RedirectResponse(
            f"{PREFIX}/payments/{payment_id}?refunded={row.stripe_id}", status_code=303
        )

    @app.get("/subscriptions")
    def subscriptions(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        status: str = "",
        tier: str = "",
        q: str = "",
        cursor: str | None = None,
    ) -> Response:
        query = select(Subscription)
        if status:
            query = query.where(Subscription.status == status[:32])
        if tier:
            query = query.where(Subscription.tier == tier[:32])
        if q:
            q = q.strip()[:320]
            by_email = select(Customer.stripe_id).where(func.lower(Customer.email) == q.lower())
            query = query.where(
                or_(
                    Subscription.stripe_id == q,
                    Subscription.customer_id == q,
                    Subscription.customer_id.in_(by_email),
                )
            )
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

    @app.get("/subscriptions/{subscription_id}")
    def subscription_detail(
        subscription_id: str, request: Request, session: SessionDep, principal: PrincipalDep
    ) -> Response:
        row = get_subscription(session, subscription_id)
        customer = session.scalars(
            select(Customer).where(Customer.stripe_id == row.customer_id)
        ).first()
        events = list(
            session.scalars(
                select(StripeEvent)
                .where(StripeEvent.object_id == row.stripe_id)
                .order_by(StripeEvent.created, StripeEvent.id)
            )
        )
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

    @app.post("/subscriptions/{subscription_id}/{action}")
    def subscription_action(
        subscription_id: str,
        action: str,
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        form: FormDep,
    ) -> Response:
        needed = {
            "tier": Permission.SUBSCRIPTIONS_CHANGE_TIER,
            "cancel": Permission.SUBSCRIPTIONS_CANCEL,
            "resume": Permission.SUBSCRIPTIONS_RESUME,
        }
        if action not in needed:
            raise StarletteHTTPException(404)
        name = {"tier": "change_tier", "cancel": "cancel", "resume": "resume"}[action]
        _attempt(request, f"subscription.{name}", subscription_id)
        _need(request, principal, needed[action])
        row = get_subscription(session, subscription_id)
        ctx = _ctx(request, session, principal)
        url = f"{PREFIX}/subscriptions/{subscription_id}/{action}"
        confirmed = _field(form, "confirm") == "yes"
        if action == "tier":
            tier = _field(form, "tier")
            if tier not in {t.key for t in TIERS}:
                raise InvalidInput("Choose a tier.", field="tier")
            if not confirmed:
                return _confirm(
                    request,
                    title="Confirm tier change",
                    summary=[
                        f"Change {row.stripe_id} from {row.tier or '—'} to {tier}.",
                        "Upgrades are prorated and invoiced now; downgrades credit the rest.",
                    ],
                    action=url,
                    fields={"tier": tier, "form_key": _field(form, "form_key")},
                    button="Change tier",
                )
            key = _field(form, "form_key")[:64] or secrets.token_hex(16)
            actions.set_tier(
                ctx, get_gateway(request), subscription_id, tier=tier, request_key=f"console-{key}"
            )
        elif action == "cancel":
            when = _field(form, "when")
            if when not in ("now", "period_end"):
                raise InvalidInput("Choose when to cancel.", field="when")
            if not confirmed:
                end = _when(row.current_period_end)
                return _confirm(
                    request,
                    title="Confirm cancellation",
                    summary=[
                        f"Cancel {row.stripe_id} "
                        + (
                            "immediately."
                            if when == "now"
                            else f"at the end of the period ({end})."
                        )
                    ],
                    action=url,
                    fields={"when": when},
                    button="Cancel subscription",
                )
            actions.cancel(
                ctx, get_gateway(request), subscription_id, at_period_end=when == "period_end"
            )
        else:
            if not confirmed:
                return _confirm(
                    request,
                    title="Confirm resume",
                    summary=[f"Resume {row.stripe_id}: undo its cancellation at period end."],
                    action=url,
                    fields={},
                    button="Resume",
                )
            actions.resume(ctx, get_gateway(request), subscription_id)
        return RedirectResponse(f"{PREFIX}/subscriptions/{subscription_id}", status_code=303)

    @app.get("/customers")
    def customers(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        q: str = "",
        cursor: str | None = None,
    ) -> Response:
        query = select(Customer).where(Customer.deleted.is_(False))
        if q:
            q = q.strip()[:320]
            query = query.where(
                or_(
                    func.lower(Customer.email) == q.lower(),
                    Customer.stripe_id == q,
                    Customer.user_id == q,
                )
            )
        rows, next_cursor = page(session, Customer, query, cursor, 25)
        return render(request, "customers.html", {"rows": rows, "next_cursor": next_cursor, "q": q})

    @app.get("/disputes")
    def disputes(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        status: str = "",
        cursor: str | None = None,
    ) -> Response:
        query = select(Dispute)
        if status:
            query = query.where(Dispute.status == status[:32])
        rows, next_cursor = page(session, Dispute, query, cursor, 25)
        return render(
            request,
            "disputes.html",
            {"rows": rows, "next_cursor": next_cursor, "status": status},
        )


def _audit_filter(actor: str, action: str, target: str, outcome: str) -> audit.AuditFilter:
    return audit.AuditFilter(
        actor=actor[:320] or None,
        action=action[:64] or None,
        target=target[:255] or None,
        outcome=outcome if outcome in audit.OUTCOMES else None,
    )


def _operations_routes(app: FastAPI) -> None:
    @app.get("/events")
    def events(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        status: str = "",
        type: str = "",
    ) -> Response:
        rows = operations.list_events(
            session, status=status[:16] or None, event_type=type[:128] or None, limit=100
        )
        return render(
            request,
            "events.html",
            {
                "rows": rows,
                "status": status,
                "type": type,
                "statuses": ("pending", "processed", "failed", "ignored"),
            },
        )

    @app.post("/events/{event_id}/replay")
    def replay(
        event_id: str,
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        form: FormDep,
    ) -> Response:
        _attempt(request, "event.replay", event_id)
        _need(request, principal, Permission.EVENTS_REPLAY)
        row = operations.get_event(session, event_id)
        if _field(form, "confirm") != "yes":
            return _confirm(
                request,
                title="Confirm replay",
                summary=[
                    f"Replay {row.event_id} ({row.type}, now {row.status}).",
                    "The worker applies it again on its next pass.",
                ],
                action=f"{PREFIX}/events/{event_id}/replay",
                fields={},
                button="Replay",
            )
        actions.replay_event(_ctx(request, session, principal), event_id)
        return RedirectResponse(f"{PREFIX}/events?replayed={event_id}", status_code=303)

    @app.get("/alerts")
    def alerts(request: Request, principal: PrincipalDep) -> Response:
        settings = _settings(request)
        firing: list[dict[str, str]] = []
        error = None
        if settings.prometheus_url:
            import httpx

            try:
                response = httpx.get(f"{settings.prometheus_url}/api/v1/alerts", timeout=3)
                response.raise_for_status()
                for alert in response.json().get("data", {}).get("alerts", []):
                    if alert.get("state") == "firing":
                        labels = alert.get("labels", {})
                        annotations = alert.get("annotations", {})
                        firing.append(
                            {
                                "name": str(labels.get("alertname", "?")),
                                "severity": str(labels.get("severity", "")),
                                "summary": str(annotations.get("summary", "")),
                                "since": str(alert.get("activeAt", "")),
                            }
                        )
            except (httpx.HTTPError, ValueError) as exc:
                error = f"Prometheus did not answer: {type(exc).__name__}"
        return render(
            request,
            "alerts.html",
            {"configured": settings.prometheus_url is not None, "firing": firing, "error": error},
        )

    @app.get("/audit")
    def audit_page(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        actor: str = "",
        action: str = "",
        target: str = "",
        outcome: str = "",
        before_id: int | None = None,
    ) -> Response:
        _need(request, principal, Permission.AUDIT_READ)
        filters = _audit_filter(actor, action, target, outcome)
        rows = audit.query(session, filters, before_id=before_id, limit=50)
        return render(
            request,
            "audit.html",
            {
                "rows": rows,
                "actor": actor,
                "action": action,
                "target": target,
                "outcome": filters.outcome or "",
                "outcomes": audit.OUTCOMES,
                "next_before": rows[-1].id if len(rows) == 50 else None,
            },
        )

    @app.get("/audit.csv")
    def audit_csv(
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        actor: str = "",
        action: str = "",
        target: str = "",
        outcome: str = "",
    ) -> Response:
        _need(request, principal, Permission.AUDIT_READ)
        filters = _audit_filter(actor, action, target, outcome)
        return PlainTextResponse(
            audit.to_csv(audit.iter_all(session, filters)),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="paydesk-audit.csv"'},
        )

    @app.get("/settings")
    def settings_page(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
        _need(request, principal, Permission.SETTINGS_READ)
        settings = _settings(request)
        # The doctor's database check opens its own connection: release ours first
        # (SQLite transactions hold the write lock).
        session.commit()
        from paydesk.doctor import run_checks
        from paydesk.stripe_gateway import build_gateway

        checks = run_checks(settings, build_gateway)
        key_age = None
        if settings.stripe_key_created is not None:
            key_age = (date.today() - settings.stripe_key_created).days
        return render(
            request,
            "settings.html",
            {
                "settings": settings,
                "checks": checks,
                "key_age": key_age,
                "rotation_days": KEY_ROTATION_DAYS,
            },
        )


def _access_routes(app: FastAPI) -> None:
    @app.get("/access")
    def access(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
        manage = roles.can(principal.role, Permission.ADMINS_MANAGE, live=_live(request))
        admins = (
            list(session.scalars(select(AdminUser).order_by(AdminUser.email))) if manage else []
        )
        owners = {user.id: user.email for user in admins}
        return render(
            request,
            "access.html",
            {
                "tokens": tokens.list_tokens(session, None if manage else principal.user_id),
                "admins": admins,
                "owners": owners,
                "roles": roles.ROLES,
                "manage": manage,
                "now": datetime.now(UTC),
            },
        )

    @app.post("/tokens")
    def create_token(
        request: Request, session: SessionDep, principal: PrincipalDep, form: FormDep
    ) -> Response:
        _attempt(request, "token.create", None)
        _need(request, principal, Permission.TOKENS_OWN)
        role = _field(form, "role")
        if roles.rank(role) > roles.rank(principal.role):
            raise PermissionDenied("A token cannot have more rights than you.", field="role")
        try:
            days = int(_field(form, "days") or tokens.DEFAULT_DAYS)
        except ValueError as exc:
            raise InvalidInput("Days: a whole number.", field="days") from exc
        user = accounts.get_admin(session, principal.user_id)
        row, raw = tokens.create(
            session,
            _settings(request),
            user,
            name=_field(form, "name"),
            role=role,
            days=days,
            actor=principal.actor,
            source_address=_source(request),
        )
        return render(request, "token_created.html", {"token": raw, "row": row})

    @app.post("/tokens/{token_id}/revoke")
    def revoke_token(
        token_id: int,
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        form: FormDep,
    ) -> Response:
        _attempt(request, "token.revoke", f"token:{token_id}")
        _need(request, principal, Permission.TOKENS_OWN)
        if _field(form, "confirm") != "yes":
            return _confirm(
                request,
                title="Confirm token revocation",
                summary=[f"Revoke API token {token_id}? Programs using it stop working at once."],
                action=f"{PREFIX}/tokens/{token_id}/revoke",
                fields={},
                button="Revoke",
            )
        tokens.revoke(
            session,
            _settings(request),
            token_id,
            by=principal,
            may_manage_others=roles.can(principal.role, Permission.ADMINS_MANAGE, live=False),
            source_address=_source(request),
        )
        return RedirectResponse(f"{PREFIX}/access", status_code=303)

    @app.post("/admins")
    def create_admin(
        request: Request, session: SessionDep, principal: PrincipalDep, form: FormDep
    ) -> Response:
        _attempt(request, "admin.create", _field(form, "email") or None)
        _need(request, principal, Permission.ADMINS_MANAGE)
        user, password = accounts.create_admin(
            session,
            _settings(request),
            email=_field(form, "email"),
            role=_field(form, "role"),
            actor=principal.actor,
            source_address=_source(request),
        )
        return render(request, "admin_created.html", {"user": user, "password": password})

    @app.post("/admins/{admin_id}/{action}")
    def admin_action(
        admin_id: int,
        action: str,
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        form: FormDep,
    ) -> Response:
        name = {"disable": "disable", "reset-2fa": "reset_2fa", "role": "role"}.get(action)
        if name is not None:
            _attempt(request, f"admin.{name}", f"admin:{admin_id}")
        _need(request, principal, Permission.ADMINS_MANAGE)
        if name is None:
            raise StarletteHTTPException(404)
        user = accounts.get_admin(session, admin_id)
        settings = _settings(request)
        if _field(form, "confirm") != "yes":
            role = _field(form, "role")
            text = {
                "disable": f"Disable {user.email}? Their sessions and tokens end at once.",
                "reset-2fa": f"Reset two-factor of {user.email}? They enrol again at next sign-in.",
                "role": f"Change {user.email}'s role from {user.role} to {role}?",
            }[action]
            return _confirm(
                request,
                title="Confirm",
                summary=[text],
                action=f"{PREFIX}/admins/{admin_id}/{action}",
                fields={"role": role} if action == "role" else {},
                button=action.replace("-", " ").capitalize(),
            )
        source = _source(request)
        if action == "disable":
            accounts.disable_admin(
                session, settings, user, actor=principal.actor, source_address=source
            )
        elif action == "reset-2fa":
            accounts.reset_two_factor(
                session, settings, user, actor=principal.actor, source_address=source
            )
        else:
            accounts.set_role(
                session,
                settings,
                user,
                _field(form, "role"),
                actor=principal.actor,
                source_address=source,
            )
        return RedirectResponse(f"{PREFIX}/access", status_code=303)
