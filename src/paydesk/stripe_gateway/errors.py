"""Translate ``stripe`` exceptions into Paydesk errors, most specific first.

Kept: Stripe's error code, the decline code, the parameter at fault and the
Stripe request id (for support); dropped: anything a customer should not see.
"""

from __future__ import annotations

from typing import Any

import stripe

from paydesk import errors

_RESOURCE_NAMES = {
    "cus": "customer",
    "pi": "payment",
    "pm": "payment method",
    "ch": "charge",
    "re": "refund",
    "sub": "subscription",
    "si": "subscription item",
    "in": "invoice",
    "price": "price",
    "prod": "product",
    "dp": "dispute",
    "evt": "event",
    "we": "webhook endpoint",
}


def _details(exc: stripe.StripeError, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"stripe_request_id": exc.request_id}
    details.update({key: value for key, value in extra.items() if value is not None})
    return details


def _missing_resource_code(message: str) -> str:
    # "No such customer: 'cus_x'" → customer_not_found
    lowered = message.lower()
    for name in _RESOURCE_NAMES.values():
        if lowered.startswith(f"no such {name}"):
            return f"{name.replace(' ', '_')}_not_found"
    return "not_found"


def translate(exc: stripe.StripeError) -> errors.PaydeskError:
    """The Paydesk error for a Stripe exception (the caller raises it ``from exc``)."""
    message = exc.user_message or "Stripe returned an error."
    error_object = exc.error
    code = exc.code
    if isinstance(exc, stripe.CardError):
        decline_code = getattr(error_object, "decline_code", None) if error_object else None
        intent = getattr(error_object, "payment_intent", None) if error_object else None
        return errors.PaymentFailed(
            message,
            code=code or "card_declined",
            details=_details(
                exc,
                decline_code=decline_code,
                payment_intent=getattr(intent, "id", None) if intent else None,
            ),
        )
    if isinstance(exc, stripe.AuthenticationError):
        return errors.StripeUnavailable(
            "Stripe rejected the API key. Check STRIPE_SECRET_KEY: is it revoked, or a "
            "test key where a live one belongs (or the reverse)?",
            code="stripe_authentication_failed",
            details=_details(exc),
        )
    if isinstance(exc, stripe.PermissionError):
        return errors.StripeUnavailable(
            "The Stripe key lacks a permission this action needs (restricted key?).",
            code="stripe_permission_denied",
            details=_details(exc),
        )
    if isinstance(exc, stripe.IdempotencyError):
        return errors.Conflict(
            "This request reused an idempotency key with different parameters.",
            code="idempotency_conflict",
            details=_details(exc),
        )
    if isinstance(exc, stripe.RateLimitError):
        return errors.StripeUnavailable(
            "Stripe is rate-limiting requests and kept refusing after Paydesk waited and "
            "retried; nothing was changed. Retry shortly.",
            code="stripe_rate_limited",
            details=_details(exc),
        )
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.http_status == 404 or code == "resource_missing":
            return errors.NotFound(
                message, code=_missing_resource_code(message), details=_details(exc)
            )
        if exc.param:
            return errors.InvalidInput(
                message, code=code or "invalid_input", field=exc.param, details=_details(exc)
            )
        return errors.Conflict(
            message, code=code or "stripe_invalid_request", details=_details(exc)
        )
    if isinstance(exc, stripe.APIConnectionError):
        return errors.StripeUnavailable(
            "Stripe could not be reached or did not answer in time, even after retries, so "
            "it is unknown whether this action was applied. Repeat the same action (with the "
            "same Idempotency-Key): it is applied at most once.",
            code="stripe_unreachable",
            details=_details(exc),
        )
    return errors.StripeUnavailable(
        "Stripe failed to process the request, even after retries. Repeat the same action "
        "shortly (with the same Idempotency-Key): it is applied at most once.",
        code="stripe_error",
        details=_details(exc),
    )
