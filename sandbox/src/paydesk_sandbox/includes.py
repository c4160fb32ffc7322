"""Includable properties: absent from an object's default shape, present when asked
for with ``expand[]`` (Stripe's "includable" fields).

- ``customer``: ``sources`` (legacy sources: always an empty list here),
  ``subscriptions`` (the customer's subscriptions), ``tax_ids`` (empty), ``tax``,
  ``cash_balance``, ``invoice_credit_balance``.
- ``price``: ``currency_options`` (the price's own currency), ``tiers`` (``null``:
  the sandbox's prices are per-unit).

The invoice's (``payments``, ``confirmation_secret``) live with invoices.
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.routing import Router
from paydesk_sandbox.state import Json, SandboxState

router = Router()


def _list(data: list[Json], url: str) -> Json:
    return {"object": "list", "data": data, "has_more": False, "url": url}


@router.expandable("customer", "sources")
def _customer_sources(state: SandboxState, customer: Json) -> Json:
    return _list([], f"/v1/customers/{customer['id']}/sources")


@router.expandable("customer", "subscriptions")
def _customer_subscriptions(state: SandboxState, customer: Json) -> Json:
    subs = [
        s
        for s in state.iter_newest_first("subscription")
        if s["customer"] == customer["id"] and s["status"] not in ("canceled", "incomplete_expired")
    ]
    return _list(subs, f"/v1/customers/{customer['id']}/subscriptions")


@router.expandable("customer", "tax_ids")
def _customer_tax_ids(state: SandboxState, customer: Json) -> Json:
    return _list([], f"/v1/customers/{customer['id']}/tax_ids")


@router.expandable("customer", "tax")
def _customer_tax(state: SandboxState, customer: Json) -> Json:
    return {
        "automatic_tax": "unrecognized_location",
        "ip_address": None,
        "location": None,
        "provider": "stripe",
    }


@router.expandable("customer", "cash_balance")
def _customer_cash_balance(state: SandboxState, customer: Json) -> Any:
    return None


@router.expandable("customer", "invoice_credit_balance")
def _customer_invoice_credit_balance(state: SandboxState, customer: Json) -> Json:
    return {}


@router.expandable("price", "currency_options")
def _price_currency_options(state: SandboxState, price: Json) -> Json:
    return {
        price["currency"]: {
            "custom_unit_amount": None,
            "tax_behavior": price["tax_behavior"],
            "unit_amount": price["unit_amount"],
            "unit_amount_decimal": price["unit_amount_decimal"],
        }
    }


@router.expandable("price", "tiers")
def _price_tiers(state: SandboxState, price: Json) -> Any:
    return None
