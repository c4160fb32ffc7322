"""The one exception tree of Paydesk.

Every error a caller can meet is a ``PaydeskError`` with a stable ``code``, a
``message`` safe to show to a person and, where one input is at fault, the
``field``. The HTTP layer (``paydesk.web.errors``) is the only place that turns
these into status codes; domain code never thinks in HTTP.

::

    PaydeskError
    ├── ConfigurationError          settings refused at start-up
    ├── InvalidInput                a request field is wrong            → 422
    ├── NotFound                    no such object                      → 404
    ├── Conflict                    state forbids the action            → 409
    ├── AuthenticationRequired      no or bad credentials               → 401
    ├── PermissionDenied            credentials lack the right          → 403
    ├── PaymentFailed               card declined or needs action       → 402
    ├── RateLimited                 too many requests                   → 429
    └── ServiceUnavailable          a dependency is down                → 503
        └── StripeUnavailable       Stripe unreachable or refused our key
"""

from __future__ import annotations

from typing import Any


class PaydeskError(Exception):
    """Base of every Paydesk error; carries a stable code and a safe message."""

    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class ConfigurationError(PaydeskError):
    """A setting breaks a rule; the message names the variable, never its value."""

    code = "configuration_error"

    def __init__(self, variable: str, rule: str) -> None:
        super().__init__(f"{variable}: {rule}", field=variable)
        self.variable = variable
        self.rule = rule


class InvalidInput(PaydeskError):
    """A request carried a value that cannot be accepted."""

    code = "invalid_input"


class NotFound(PaydeskError):
    """The requested object does not exist (or is not visible to the caller)."""

    code = "not_found"


class Conflict(PaydeskError):
    """The object's current state forbids the requested action."""

    code = "conflict"


class AuthenticationRequired(PaydeskError):
    """Credentials are missing, expired or invalid."""

    code = "authentication_required"


class PermissionDenied(PaydeskError):
    """The caller is known but lacks the permission for this action."""

    code = "permission_denied"


class PaymentFailed(PaydeskError):
    """A payment was declined or needs the customer to act (e.g. 3-D Secure)."""

    code = "payment_failed"


class RateLimited(PaydeskError):
    """Too many requests; retry later."""

    code = "rate_limited"


class ServiceUnavailable(PaydeskError):
    """A dependency (database, Stripe) is unavailable; the caller may retry."""

    code = "service_unavailable"


class StripeUnavailable(ServiceUnavailable):
    """Stripe could not be reached, or refused our credentials."""

    code = "stripe_unavailable"
