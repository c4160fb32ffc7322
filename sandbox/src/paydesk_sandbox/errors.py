"""Stripe-shaped API errors.

Handlers raise :class:`StripeError`; the dispatcher turns it into the JSON body and
HTTP status Stripe would send. stripe-python picks its exception class from the
status alone (400/404 → InvalidRequestError, 401 → AuthenticationError,
402 → CardError, ...), so the status matters as much as the body.
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        # Objects Stripe embeds in some errors: payment_intent, setup_intent,
        # payment_method (full objects) or charge (an id).
        self.extra = extra or {}

    def body(self, request_id: str, now: int) -> dict[str, Any]:
        """The error body as Stripe sends it (reference §3)."""
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
            err["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        if self.decline_code is not None:
            err["decline_code"] = self.decline_code
        if self.param is not None:
            err["param"] = self.param
        err["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}?t={now}"
        err.update(self.extra)
        return {"error": err}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None
) -> StripeError:
    """400 ``invalid_request_error``."""
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


def parameter_missing(param: str) -> StripeError:
    """400 for a required parameter that was not sent."""
    return invalid_request(
        f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def parameter_unknown(param: str) -> StripeError:
    """400 for a parameter the endpoint does not take."""
    return invalid_request(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
    )


def resource_missing(label: str, object_id: str, *, param: str = "id") -> StripeError:
    """404 ``resource_missing``: ``No such customer: 'cus_x'``."""
    return StripeError(
        404,
        "invalid_request_error",
        f"No such {label}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def card_error(
    code: str,
    message: str,
    *,
    decline_code: str | None = None,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> StripeError:
    """402 ``card_error`` (a decline, an expired card, authentication required...)."""
    return StripeError(
        402, "card_error", message, code=code, decline_code=decline_code, param=param, extra=extra
    )


def idempotency_error(message: str) -> StripeError:
    """400 ``idempotency_error`` (same key, different request)."""
    return StripeError(400, "idempotency_error", message)


def authentication_error(message: str) -> StripeError:
    """401. Real Stripe labels bad-key bodies ``invalid_request_error``; the SDK
    raises ``AuthenticationError`` from the status."""
    return StripeError(401, "invalid_request_error", message)


def unexpected_state(message: str, *, code: str = "payment_intent_unexpected_state") -> StripeError:
    """400 for an action the object's current status does not allow."""
    return invalid_request(message, code=code)
