"""Helpers shared by the billing resource modules."""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.params import Params
from paydesk_sandbox.state import Json, clone

MAX_AMOUNT = 99_999_999  # Stripe's limit: eight digits in minor units


def changed(before: Json, after: Json) -> Json:
    """``previous_attributes`` for an update event: old values of the keys that changed."""
    return {key: before.get(key) for key, value in after.items() if before.get(key) != value}


def snapshot(obj: Json) -> Json:
    """A deep copy taken before mutating, to compute ``previous_attributes``."""
    return clone(obj)


def currency(params: Params, key: str = "currency", *, required: bool = True) -> str | None:
    """A lower-cased three-letter ISO currency code."""
    value = params.string(key, required=required)
    if value is None:
        return None
    if len(value) != 3 or not value.isalpha():
        raise invalid_request(f"Invalid currency: {value}.", param=params.name(key))
    return value.lower()


def required_currency(params: Params, key: str = "currency") -> str:
    """Like :func:`currency`, but the parameter must be present."""
    return currency(params, key) or ""  # currency(required=True) raised if absent


def required_enum(params: Params, key: str, choices: tuple[str, ...]) -> str:
    """An enum parameter that must be present."""
    return params.enum(key, choices, required=True) or ""  # enum(required=True) raised


def amount(params: Params, key: str, *, required: bool = False) -> int | None:
    """A non-negative amount in minor units of at most eight digits."""
    value = params.integer(key, required=required, minimum=0)
    if value is not None and value > MAX_AMOUNT:
        raise invalid_request(
            f"Invalid {params.name(key)}: must be less than or equal to {MAX_AMOUNT}",
            param=params.name(key),
            code="amount_too_large",
        )
    return value


def matches(obj: Json, key: str, wanted: Any) -> bool:
    """List-filter helper: no filter (None) matches everything."""
    return wanted is None or obj.get(key) == wanted
