"""The one place that maps errors to HTTP responses.

Every error body has the same shape::

    {"error": {"code": "...", "message": "...", "field": "..." | null, "request_id": "..."}}

Domain code raises ``PaydeskError`` subclasses; framework errors (unknown route,
malformed JSON, failed validation) and database outages are folded into the same
shape here, so a client can always rely on ``error.code``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from paydesk import errors
from paydesk.logs import get_logger, redact_text

log = get_logger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[errors.PaydeskError], int], ...] = (
    # Most specific first: the first match wins.
    (errors.InvalidInput, 422),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.AuthenticationRequired, 401),
    (errors.PermissionDenied, 403),
    (errors.PaymentFailed, 402),
    (errors.RateLimited, 429),
    (errors.ServiceUnavailable, 503),
    (errors.ConfigurationError, 503),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def status_for(error: errors.PaydeskError) -> int:
    """The HTTP status of a Paydesk error."""
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 400


def error_body(
    request: Request, code: str, message: str, field: str | None = None, **details: Any
) -> dict[str, Any]:
    """The JSON body of every error response."""
    body: dict[str, Any] = {
        "code": code,
        # Messages may quote the request (a path, a value); never echo a secret back.
        "message": redact_text(message),
        "field": field,
        "request_id": getattr(request.state, "request_id", None),
    }
    body.update(details)
    return {"error": body}


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **details: Any,
) -> JSONResponse:
    """A JSON error response in the common shape."""
    return JSONResponse(
        error_body(request, code, message, field, **details),
        status_code=status,
        headers=dict(headers) if headers else None,
    )


def _field_of(location: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _paydesk_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.PaydeskError)
    status = status_for(exc)
    headers = {"Retry-After": "5"} if status in (429, 503) else None
    return error_response(
        request, status, exc.code, exc.message, exc.field, headers=headers, **exc.details
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return error_response(request, 400, "malformed_json", "The request body is not valid JSON.")
    first = problems[0] if problems else {}
    field = _field_of(first.get("loc", ()))
    message = str(first.get("msg", "Invalid input."))
    if field:
        message = f"{field}: {message}"
    fields = [
        {"field": _field_of(problem.get("loc", ())), "message": str(problem.get("msg", ""))}
        for problem in problems
    ]
    return error_response(request, 422, "invalid_input", message, field, errors=fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"No route for {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette's Allow names only the first route of the path; list every method.
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return error_response(request, exc.status_code, code, message, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods.update(route_methods)
    return sorted(methods)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # The driver's own message ("database is locked", "connection refused"), not the
    # statement and its parameters, which SQLAlchemy's str() would include.
    reason = str(getattr(exc, "orig", None) or type(exc).__name__)
    log.warning("database_unavailable", error_type=type(exc).__name__, reason=reason)
    return error_response(
        request,
        503,
        "database_unavailable",
        "The database is unavailable; retry shortly.",
        headers={"Retry-After": "5"},
    )


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value that came with the request: a NUL character in a
    # PostgreSQL string, a number out of a column's range. The request is at fault, and
    # nothing of the statement (which quotes the value) is echoed.
    reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
    log.warning("database_refused_value", reason=reason)
    return error_response(
        request,
        422,
        "invalid_input",
        "A value of the request cannot be used (e.g. a NUL character or a number out of range).",
    )


def internal_error_body(request_id: str) -> bytes:
    """Body of the 500 answer to an unexpected exception; reveals nothing about it.

    Used by ``RequestContextMiddleware``, which catches what no handler did.
    """
    body = {
        "error": {
            "code": "internal_error",
            "message": "An unexpected error occurred.",
            "field": None,
            "request_id": request_id,
        }
    }
    return json.dumps(body).encode()


# What any operation under these prefixes may answer besides its own documented errors.
_MALFORMED = {400: "Malformed request (e.g. a body that is not valid JSON)"}
_AUTH = {
    401: "Missing, expired or invalid credentials",
    403: "The credentials lack the permission",
}
_COMMON = {
    404: "No such object (or no such route)",
    422: "Invalid input; error.field names it",
    503: "Stripe or the database is unavailable; retry later",
}
_PUBLIC_API = ("/api/billing/config", "/api/webhooks/")


def document_common_errors(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the errors this module answers for every API operation to ``openapi``.

    Authentication, malformed bodies, unknown objects, failed validation and database
    outages are answered here (not by each route), so they are documented here too:
    every ``/api`` operation lists them with the common ``ErrorBody`` schema.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "ErrorDetail",
        {
            "title": "ErrorDetail",
            "type": "object",
            "additionalProperties": True,
            "required": ["code", "message", "field", "request_id"],
            "properties": {
                "code": {"type": "string", "title": "Code"},
                "message": {"type": "string", "title": "Message"},
                "field": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Field"},
                "request_id": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "title": "Request Id",
                },
            },
        },
    )
    schemas.setdefault(
        "ErrorBody",
        {
            "title": "ErrorBody",
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
        },
    )
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, operations in openapi.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            extra = dict(_MALFORMED) | dict(_COMMON)
            if not path.startswith(_PUBLIC_API):
                extra[401] = _AUTH[401]
                if path.startswith("/api/admin/"):  # app users have no permissions to lack
                    extra[403] = _AUTH[403]
            responses = operation.setdefault("responses", {})
            for status, description in extra.items():
                responses.setdefault(
                    str(status), {"description": description, "content": dict(content)}
                )
            operation["responses"] = dict(sorted(responses.items()))
    return openapi


# A console error page that needs nothing but the request: no template environment,
# no settings, no session, no database (which is what may have failed).
_PLAIN_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Paydesk Admin</title>
<link rel="stylesheet" href="{prefix}/static/console.css">
</head>
<body>
<header class="top"><span class="brand">Paydesk</span></header>
<main id="main">
<h1>{title}</h1>
<p class="error" role="alert">{message}</p>
<dl class="facts">
  <dt>Code</dt><dd><code>{code}</code></dd>
  <dt>Request id</dt><dd><code>{request_id}</code></dd>
</dl>
<p><a href="{here}">Try again</a> · <a href="{prefix}">Dashboard</a></p>
</main>
</body>
</html>
"""


def plain_error_page(
    request: Request, status: int, code: str, title: str, message: str
) -> HTMLResponse:
    """A styled console error page with the request id, built from the request alone."""
    prefix = str(request.scope.get("root_path", "")).rstrip("/") or "/admin"
    body = _PLAIN_PAGE.format(
        title=html.escape(title),
        message=html.escape(message),
        code=html.escape(code),
        request_id=html.escape(str(getattr(request.state, "request_id", None) or "-")),
        prefix=html.escape(prefix),
        here=html.escape(request.url.path),
    )
    headers = {"Retry-After": "5", "Cache-Control": "no-store"} if status == 503 else None
    return HTMLResponse(body, status_code=status, headers=headers)


async def _console_database_error(request: Request, exc: Exception) -> HTMLResponse:
    reason = str(getattr(exc, "orig", None) or type(exc).__name__)
    log.warning("database_unavailable", error_type=type(exc).__name__, reason=reason)
    return plain_error_page(
        request,
        503,
        "database_unavailable",
        "The database is busy or unavailable",
        "This page could not be read from the database just now; nothing was changed. "
        "Retry in a few seconds.",
    )


async def _console_internal_error(request: Request, _exc: Exception) -> HTMLResponse:
    # Starlette logs and re-raises the exception after this page is sent.
    return plain_error_page(
        request,
        500,
        "internal_error",
        "Something went wrong",
        "An unexpected error occurred; it was logged with the request id below.",
    )


def install_console_error_pages(console: FastAPI) -> None:
    """Database outages on console pages: a plain 503 page, never a half-sent 500.

    Registered on the console's own app (a mounted app answers its errors itself:
    left to the parent, a database error becomes Starlette's bare 500 and then a
    "response already started" error).
    """
    console.add_exception_handler(OperationalError, _console_database_error)
    console.add_exception_handler(PoolTimeoutError, _console_database_error)
    console.add_exception_handler(InterfaceError, _console_database_error)
    console.add_exception_handler(Exception, _console_internal_error)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app`` and document it in its OpenAPI."""
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_common_errors(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(errors.PaydeskError, _paydesk_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)
    app.add_exception_handler(InterfaceError, _database_error)
    app.add_exception_handler(DataError, _data_error)
