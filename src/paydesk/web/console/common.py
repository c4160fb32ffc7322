"""What every console page shares: templates, rendering, the signed-in admin, forms.

Pages live in ``paydesk.web.console.pages`` (one router per page group); this module
has no routes. Every page requires a fully signed-in session (``PrincipalDep``);
every form carries a CSRF token (``FormDep``); every mutation names itself first
(``attempt``) so its refusal or failure is audited, and asks for confirmation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk.admin_actions import Action, Context
from paydesk.auth import audit, roles
from paydesk.auth import sessions as admin_sessions
from paydesk.auth.accounts import Principal
from paydesk.auth.roles import Permission
from paydesk.errors import InvalidInput, PaydeskError, PermissionDenied
from paydesk.money import MAXIMUM_AMOUNT, Money, decimals
from paydesk.settings import Settings
from paydesk.web.api.admin_auth import action_context as web_action_context
from paydesk.web.api.admin_auth import intend
from paydesk.web.api.deps import SessionDep
from paydesk.web.errors import status_for

HERE = Path(__file__).parent
PREFIX = "/admin"
KEY_ROTATION_DAYS = 90
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


# What the page after an action says happened (``?done=<key>``): fixed texts only, so
# a link can never make the console display words of someone else's choosing.
FLASHES: dict[str, str] = {
    "refunded": "Refund created.",
    "captured": "Payment captured.",
    "payment_canceled": "Payment canceled.",
    "refreshed": "Payment re-read from Stripe.",
    "tier_changed": "Tier changed.",
    "cancel_scheduled": "The subscription cancels at the end of its period; resume keeps it.",
    "canceled": "Subscription canceled.",
    "resumed": "Subscription resumed: it renews as before.",
    "replayed": "Event queued for replay; the worker applies it on its next pass.",
    "evidence_saved": "Evidence saved as a draft; submit it before the deadline.",
    "evidence_submitted": "Evidence submitted to the bank.",
    "dispute_closed": "Dispute accepted: it is closed as lost.",
    "payment_created": "Payment created: it awaits the customer. Create a pay link for them here.",
    "subscription_created": "Subscription created. A paid tier without a card on file stays"
    " incomplete until the customer pays its first invoice (its payment offers a pay link).",
}


class Redirect(Exception):
    """Leave the page for ``location`` (e.g. the sign-in page)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def format_money(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return "—"
    return Money(amount, currency).format()


def format_when(value: int | datetime | None) -> str:
    if value is None or value == 0:
        return "—"
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, int) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


_env.filters["money"] = format_money
_env.filters["when"] = format_when


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def is_live(request: Request) -> bool:
    return settings_of(request).key_mode == "live"


def source_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def csrf_cookie_of(request: Request) -> str:
    existing = request.cookies.get(admin_sessions.CSRF_COOKIE)
    if existing and 16 <= len(existing) <= 64:
        return existing
    fresh: str | None = getattr(request.state, "new_csrf", None)
    if fresh is None:
        fresh = admin_sessions.new_csrf_cookie()
        request.state.new_csrf = fresh
    return fresh


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or settings_of(request).env != "development"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    principal: Principal | None = None,
) -> HTMLResponse:
    """A page, with the TEST/LIVE badge, navigation and a CSRF token for its forms."""
    settings = settings_of(request)
    principal = principal or getattr(request.state, "principal", None)
    csrf_cookie = csrf_cookie_of(request)
    binding = None if template in SIGN_IN_TEMPLATES else session_cookie_of(request)
    live = settings.key_mode == "live"
    body = _env.get_template(template).render(
        request=request,
        prefix=PREFIX,
        principal=principal,
        mode="LIVE" if live else "TEST",
        csrf=admin_sessions.csrf_token(settings, csrf_cookie, binding),
        can=lambda permission: (
            principal is not None and roles.can(principal.role, Permission(permission), live=live)
        ),
        **{"flash": FLASHES.get(request.query_params.get("done", "")), **(context or {})},
    )
    response = HTMLResponse(body, status_code=status)
    if getattr(request.state, "new_csrf", None):
        response.set_cookie(
            admin_sessions.CSRF_COOKIE,
            csrf_cookie,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
        )
    return response


# The sign-in steps' pages: their forms are posted before a session exists (or
# while it is half-finished), so their tokens are bound to none (``SignInFormDep``).
SIGN_IN_TEMPLATES = frozenset({"login.html", "two_factor.html", "enrol.html"})


def session_cookie_of(request: Request) -> str | None:
    """The console session this request belongs to: the cookie it carries, or the one
    being set on its response (a page rendered right after sign-in)."""
    fresh: str | None = getattr(request.state, "new_session_cookie", None)
    return fresh or request.cookies.get(admin_sessions.COOKIE)


def will_set_session_cookie(request: Request, raw: str) -> None:
    """Note that this response sets session ``raw`` (forms rendered now bind to it)."""
    request.state.new_session_cookie = raw


def set_session_cookie(request: Request, response: Response, raw: str) -> None:
    will_set_session_cookie(request, raw)
    response.set_cookie(
        admin_sessions.COOKIE,
        raw,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


def signed_in(request: Request, session: SessionDep) -> Principal:
    """The admin of a fully signed-in session, or a redirect to the sign-in page."""
    loaded = admin_sessions.load(
        session, settings_of(request), request.cookies.get(admin_sessions.COOKIE)
    )
    if loaded is None or loaded.row.stage != "full":
        raise Redirect(f"{PREFIX}/login")
    principal = loaded.principal()
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(signed_in)]


async def _checked_form(request: Request, session_value: str | None) -> FormData:
    form = await request.form()
    token = form.get("csrf_token")
    if not admin_sessions.csrf_ok(
        settings_of(request),
        request.cookies.get(admin_sessions.CSRF_COOKIE),
        token if isinstance(token, str) else None,
        session_value,
    ):
        raise PermissionDenied(
            "The form expired or did not come from this console; reload the page and retry.",
            code="csrf_failed",
        )
    return form


async def csrf_form(request: Request) -> FormData:
    """The posted form, after checking its CSRF token against the cookie and the
    session: a token of another session is refused."""
    return await _checked_form(request, request.cookies.get(admin_sessions.COOKIE))


async def sign_in_form(request: Request) -> FormData:
    """The posted form of a sign-in step: its token is bound to the CSRF cookie only."""
    return await _checked_form(request, None)


SignInFormDep = Annotated[FormData, Depends(sign_in_form)]
FormDep = Annotated[FormData, Depends(csrf_form)]


def form_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def raw_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def action_context(request: Request, session: SessionDep, principal: Principal) -> Context:
    """The context admin actions run in, for a console form."""
    return web_action_context(request, session, settings_of(request), principal, via="console")


def may(request: Request, action: Action) -> bool:
    """Whether the signed-in admin may perform ``action`` (to offer its form, or not)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal is not None and roles.can(
        principal.role, action.permission, live=is_live(request)
    )


def need(request: Request, principal: Principal, permission: Permission) -> None:
    roles.check(principal.role, permission, live=is_live(request))


def attempt(request: Request, action: str, target: str | None) -> None:
    """Name the mutation this form attempts: its refusal or failure is audited under it."""
    intend(request, action, target, via="console")


def confirm(
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


async def paydesk_error(request: Request, exc: Exception) -> Response:
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


async def data_error(request: Request, exc: Exception) -> Response:
    # The database refused a value of the request (a NUL character in a PostgreSQL
    # string, a number out of range): the request's fault, shown like any invalid input.
    assert isinstance(exc, DataError)
    refused = InvalidInput("A value of the request cannot be used (e.g. a NUL character).")
    return await paydesk_error(request, refused)


async def redirect(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Redirect)
    return RedirectResponse(exc.location, status_code=303)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = "No such page." if exc.status_code == 404 else str(exc.detail)
    return render(
        request, "error.html", {"message": message, "code": "http_error"}, status=exc.status_code
    )


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    message = str(problems[0].get("msg", "Invalid input.")) if problems else "Invalid input."
    return render(request, "error.html", {"message": message, "code": "invalid_input"}, status=422)


def parse_amount(raw: str, currency: str) -> int | None:
    """Major units as typed ("12.50") to minor units; blank means the full amount."""
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise InvalidInput("Amount: expected a number such as 12.50.", field="amount") from exc
    # NaN would make the comparisons below raise; 1e999999999 would become an integer of a
    # billion digits. No refund is larger than Stripe's largest charge.
    # copy_abs, not abs(): abs() rounds in the context and overflows on 1e999999999.
    if not value.is_finite() or value.copy_abs() > MAXIMUM_AMOUNT:
        raise InvalidInput("Amount: expected a number such as 12.50.", field="amount")
    minor = value * (10 ** decimals(currency))
    if value <= 0 or minor != minor.to_integral_value():
        raise InvalidInput("Amount: a positive amount in the currency's units.", field="amount")
    return int(minor)


def csv_response(
    request: Request,
    unit_of_work: Session,
    name: str,
    header: Sequence[str],
    rows: Callable[[Session], Iterable[Sequence[object]]],
) -> Response:
    """A streamed CSV download of ``rows``, read in a session of its own.

    The request's unit of work ends when the handler returns, before the body is
    streamed: the rows are read (in keyset pages) by a session the stream owns and
    closes.
    Formula-like text cells are neutralised as in the audit export.
    """
    # Release the request's own transaction first: on SQLite it holds the write lock,
    # and the export's session could not begin beside it.
    unit_of_work.commit()
    sessions: sessionmaker[Session] = request.app.state.sessions
    session = sessions()
    try:
        # The first page is read now, so a filter the database refuses (a NUL in a
        # PostgreSQL string) is an error page, not a download broken after its headers.
        iterator = iter(rows(session))
        first = next(iterator, None)
    except BaseException:
        session.close()
        raise

    def lines() -> Iterator[str]:
        try:
            yield audit.csv_line(header)
            if first is not None:
                yield audit.csv_line(first)
            for row in iterator:
                yield audit.csv_line(row)
        finally:
            session.close()

    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="paydesk-{name}.csv"'},
    )
