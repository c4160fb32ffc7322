"""Console sign-in: password, second factor, enrolment, password change, sign-out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paydesk.auth import accounts, audit, roles, two_factor
from paydesk.auth import sessions as admin_sessions
from paydesk.errors import PaydeskError
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import (
    PREFIX,
    FormDep,
    PrincipalDep,
    Redirect,
    SignInFormDep,
    form_field,
    raw_field,
    render,
    set_session_cookie,
    settings_of,
    source_of,
    will_set_session_cookie,
)
from paydesk.web.errors import status_for

router = APIRouter()


_PASSWORD_RULES = {
    "min_length": accounts.MIN_PASSWORD_LENGTH,
    "max_length": accounts.MAX_PASSWORD_LENGTH,
}


def _refused(request: Request, template: str, exc: PaydeskError, **context: object) -> Response:
    response = render(request, template, {"error": exc.message, **context}, status=status_for(exc))
    wait = exc.details.get("retry_after_seconds")
    if isinstance(wait, int):
        response.headers["Retry-After"] = str(wait)
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html")


@router.post("/login")
def login(request: Request, session: SessionDep, form: SignInFormDep) -> Response:
    settings = settings_of(request)
    try:
        user = accounts.check_password(
            session,
            settings,
            form_field(form, "email"),
            raw_field(form, "password"),  # passwords keep their spaces
            source_address=source_of(request),
        )
    except PaydeskError as exc:
        # Commit the audited failure (it counts towards the back-off) despite the refusal.
        session.commit()
        return _refused(request, "login.html", exc)
    if user.totp_enabled:
        stage = "password"
    elif roles.require_two_factor(user.role):
        stage = "enrol"
    else:
        stage = "full"
        accounts.signed_in(session, settings, user, method="password", source=source_of(request))
    raw = admin_sessions.start(
        session,
        settings,
        user,
        stage=stage,
        source_address=source_of(request),
        user_agent=request.headers.get("user-agent"),
    )
    target = {"password": "/2fa", "enrol": "/enrol", "full": ""}[stage]
    response = RedirectResponse(f"{PREFIX}{target}", status_code=303)
    set_session_cookie(request, response, raw)
    return response


def pending(request: Request, session: SessionDep, stage: str) -> admin_sessions.LoadedSession:
    loaded = admin_sessions.load(
        session, settings_of(request), request.cookies.get(admin_sessions.COOKIE)
    )
    if loaded is None or loaded.row.stage != stage:
        raise Redirect(f"{PREFIX}/login")
    return loaded


@router.get("/2fa")
def second_factor_page(request: Request, session: SessionDep) -> Response:
    loaded = pending(request, session, "password")
    offer = two_factor.has_recovery_codes(session, loaded.user)
    return render(request, "two_factor.html", {"recovery_codes": offer})


@router.post("/2fa")
def second_factor(request: Request, session: SessionDep, form: SignInFormDep) -> Response:
    settings = settings_of(request)
    loaded = pending(request, session, "password")
    user = loaded.user
    try:
        method = accounts.check_second_factor(
            session,
            settings,
            user,
            code=form_field(form, "code"),
            recovery_code=form_field(form, "recovery_code"),
            source_address=source_of(request),
        )
    except PaydeskError as exc:
        # Commit the audited failure (it counts towards the back-off) despite the refusal.
        session.commit()
        return _refused(
            request,
            "two_factor.html",
            exc,
            recovery_codes=two_factor.has_recovery_codes(session, user),
        )
    accounts.signed_in(session, settings, user, method=method, source=source_of(request))
    raw = admin_sessions.promote(session, settings, loaded, stage="full")
    response = RedirectResponse(f"{PREFIX}", status_code=303)
    set_session_cookie(request, response, raw)
    return response


@router.get("/enrol")
def enrol_page(request: Request, session: SessionDep) -> Response:
    settings = settings_of(request)
    loaded = pending(request, session, "enrol")
    # The same seed on every load of this session (a reload must not invalidate what
    # was just scanned); another sign-in gets another one.
    seed = two_factor.start_enrolment(
        settings, loaded.user, seed=two_factor.enrolment_seed(settings, loaded.row.digest)
    )
    uri = two_factor.provisioning_uri(seed, loaded.user.email)
    return render(
        request,
        "enrol.html",
        {"seed": seed, "qr": two_factor.qr_svg(uri), "email": loaded.user.email},
    )


@router.post("/enrol")
def enrol(request: Request, session: SessionDep, form: SignInFormDep) -> Response:
    settings = settings_of(request)
    loaded = pending(request, session, "enrol")
    user = loaded.user
    # Check the code against this session's seed, whichever session stored one last.
    seed = two_factor.start_enrolment(
        settings, user, seed=two_factor.enrolment_seed(settings, loaded.row.digest)
    )
    if not two_factor.enable_two_factor(settings, user, form_field(form, "code")):
        uri = two_factor.provisioning_uri(seed, user.email)
        return render(
            request,
            "enrol.html",
            {
                "seed": seed,
                "qr": two_factor.qr_svg(uri),
                "email": user.email,
                "error": "That code did not match; check your device's clock and retry.",
            },
            status=422,
        )
    codes = two_factor.issue_recovery_codes(session, settings, user)
    audit.record(
        session,
        settings,
        actor=user.email,
        action="admin.enrol_2fa",
        target=user.email,
        source_address=source_of(request),
    )
    accounts.signed_in(session, settings, user, method="totp_enrolment", source=source_of(request))
    raw = admin_sessions.promote(session, settings, loaded, stage="full")
    # The page's forms (sign-out) belong to the session this response starts.
    will_set_session_cookie(request, raw)
    response = render(request, "recovery_codes.html", {"codes": codes})
    set_session_cookie(request, response, raw)
    return response


@router.get("/password")
def password_page(request: Request, principal: PrincipalDep, changed: int = 0) -> Response:
    return render(request, "password.html", {**_PASSWORD_RULES, "changed": changed})


@router.post("/password")
def change_password(
    request: Request, session: SessionDep, principal: PrincipalDep, form: FormDep
) -> Response:
    settings = settings_of(request)
    user = accounts.get_admin(session, principal.user_id)
    try:
        accounts.change_password(
            session,
            settings,
            user,
            # Passwords keep their spaces.
            current=raw_field(form, "current_password"),
            new=raw_field(form, "new_password"),
            repeated=raw_field(form, "new_password_repeat"),
            keep_session_id=principal.credential_id,
            source_address=source_of(request),
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
            source_address=source_of(request),
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


@router.post("/logout")
def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    loaded = admin_sessions.load(
        session, settings_of(request), request.cookies.get(admin_sessions.COOKIE)
    )
    if loaded is not None:
        admin_sessions.end(loaded)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(admin_sessions.COOKIE, path=PREFIX)
    return response
