"""Fresh objects with exactly the keys of Stripe's sample objects (fixtures3.json).

Each builder returns a new JSON-ready dict; the route modules store it and mutate the
fields that change. Keeping every key here, in one place per resource, is what makes
the key-set comparison test meaningful; that is also why this stays one module past
~500 lines: it is a list of shapes, one builder per resource, not logic.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def product(*, id: str, created: int, name: str, params: JSON) -> JSON:
    """A product from the create parameters already validated by the caller."""
    return {
        "id": id,
        "object": "product",
        "active": params.get("active", True),
        "created": created,
        "default_price": None,
        "description": params.get("description"),
        "images": list(params.get("images") or []),
        "livemode": False,
        "marketing_features": [
            {"name": feature.get("name")} for feature in params.get("marketing_features") or []
        ],
        "metadata": dict(params.get("metadata") or {}),
        "name": name,
        "package_dimensions": params.get("package_dimensions"),
        "shippable": params.get("shippable"),
        "statement_descriptor": params.get("statement_descriptor"),
        "tax_code": params.get("tax_code"),
        "unit_label": params.get("unit_label"),
        "updated": created,
        "url": params.get("url"),
        "type": "service",
    }


def recurring(interval: str, interval_count: int) -> JSON:
    """The ``recurring`` hash of a price."""
    return {
        "interval": interval,
        "interval_count": interval_count,
        "meter": None,
        "usage_type": "licensed",
        "trial_period_days": None,
    }


def price(
    *,
    id: str,
    created: int,
    product_id: str,
    currency: str,
    unit_amount: int,
    recurring_hash: JSON | None,
    params: JSON,
) -> JSON:
    """A per-unit price (one-time when ``recurring_hash`` is None)."""
    return {
        "id": id,
        "object": "price",
        "active": params.get("active", True),
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": params.get("lookup_key"),
        "metadata": dict(params.get("metadata") or {}),
        "nickname": params.get("nickname"),
        "product": product_id,
        "recurring": recurring_hash,
        "tax_behavior": params.get("tax_behavior", "unspecified"),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if recurring_hash is None else "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def plan(price_object: JSON) -> JSON:
    """The legacy ``plan`` view of a recurring price, still embedded in subscription items."""
    rec = price_object["recurring"] or {}
    return {
        "id": price_object["id"],
        "object": "plan",
        "active": price_object["active"],
        "amount": price_object["unit_amount"],
        "amount_decimal": price_object["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price_object["created"],
        "currency": price_object["currency"],
        "interval": rec.get("interval"),
        "interval_count": rec.get("interval_count"),
        "livemode": False,
        "metadata": price_object["metadata"],
        "meter": None,
        "nickname": price_object["nickname"],
        "product": price_object["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def subscription_item(
    *,
    id: str,
    created: int,
    subscription_id: str,
    price_object: JSON,
    quantity: int,
    period: tuple[int, int],
    metadata: JSON,
) -> JSON:
    """A subscription item; since 2025-03-31.basil it, not the subscription, holds the period."""
    return {
        "id": id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": dict(metadata),
        "plan": plan(price_object),
        "price": price_object,
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(
    *,
    id: str,
    created: int,
    customer_id: str,
    currency: str,
    anchor: int,
    items: list[JSON],
    params: JSON,
    test_clock: str | None,
) -> JSON:
    """A subscription in ``incomplete`` status; the caller settles status and invoice."""
    return {
        "id": id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
        "billing_cycle_anchor": anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic", "flexible": None},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": params.get("collection_method", "charge_automatically"),
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": params.get("days_until_due"),
        "default_payment_method": params.get("default_payment_method"),
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": dict(params.get("metadata") or {}),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": created,
        "status": "incomplete",
        "test_clock": test_clock,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def line_item(
    *,
    id: str,
    invoice_id: str,
    amount: int,
    currency: str,
    description: str | None,
    period: tuple[int, int],
    quantity: int,
    price_id: str | None,
    subscription_id: str | None,
    subscription_item_id: str | None,
    invoice_item_id: str | None,
    proration: bool,
    metadata: JSON,
    product_id: str | None = None,
) -> JSON:
    """An invoice line, from a subscription item (a cycle charge) or an invoice item."""
    if invoice_item_id is not None:
        parent: JSON = {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": invoice_item_id,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription_id,
            },
            "subscription_item_details": None,
        }
    else:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription_id,
                "subscription_item": subscription_item_id,
            },
        }
    return {
        "id": id,
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": dict(metadata),
        "parent": parent,
        "period": {"start": period[0], "end": period[1]},
        "pretax_credit_amounts": [],
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price_id, "product": product_id},
            "unit_amount_decimal": str(amount // quantity if quantity else amount),
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": subscription_id,
        "subtotal": amount,
        "taxes": [],
    }


def invoice_item(
    *,
    id: str,
    created: int,
    customer_id: str,
    amount: int,
    currency: str,
    description: str | None,
    period: tuple[int, int],
    proration: bool,
    subscription_id: str | None,
    price_id: str | None,
    quantity: int,
    metadata: JSON,
    test_clock: str | None,
    product_id: str | None = None,
) -> JSON:
    """A pending invoice item (proration or manual charge) waiting for an invoice."""
    return {
        "id": id,
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "date": created,
        "description": description,
        "discountable": not proration,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": dict(metadata),
        "net_amount": amount,
        "parent": (
            {
                "type": "subscription_details",
                "subscription_details": {"subscription": subscription_id},
            }
            if subscription_id
            else None
        ),
        "period": {"start": period[0], "end": period[1]},
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price_id, "product": product_id} if price_id else None,
            "unit_amount_decimal": str(amount // quantity if quantity else amount),
        },
        "proration": proration,
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": test_clock,
    }


def invoice(
    *,
    id: str,
    created: int,
    customer: JSON,
    currency: str,
    billing_reason: str,
    period: tuple[int, int],
    subscription_id: str | None,
    subscription_metadata: JSON | None,
    params: JSON,
    test_clock: str | None,
) -> JSON:
    """A draft invoice without lines; :mod:`invoicing` adds lines and totals."""
    parent = (
        {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": subscription_metadata,
                "subscription": subscription_id,
            },
        }
        if subscription_id
        else None
    )
    return {
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Paydesk Sandbox",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": params.get("auto_advance", True),
        "automatic_tax": {
            "enabled": False,
            "liability": None,
            "status": None,
            "disabled_reason": None,
            "provider": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": params.get("collection_method", "charge_automatically"),
        "created": created,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": customer.get("shipping"),
        "customer_tax_exempt": customer.get("tax_exempt", "none"),
        "customer_tax_ids": [],
        "default_payment_method": params.get("default_payment_method"),
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/invoices/{id}/lines",
        },
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        # Removed from the API in 2025-03-31.basil but still present (null) in the
        # fixture; the subscription is reached through ``parent``.
        "subscription": None,
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": test_clock,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def invoice_payment(
    *, id: str, created: int, invoice_id: str, amount: int, currency: str, payment_intent_id: str
) -> JSON:
    """The link between an invoice and the PaymentIntent that (tries to) pay it."""
    return {
        "id": id,
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": amount,
        "created": created,
        "currency": currency,
        "invoice": invoice_id,
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }


def test_clock(*, id: str, created: int, frozen_time: int, name: str | None) -> JSON:
    """A test clock; Stripe deletes unused clocks seven days after creation."""
    return {
        "id": id,
        "object": "test_helpers.test_clock",
        "created": created,
        "deletes_after": created + 7 * 86_400,
        "frozen_time": frozen_time,
        "livemode": False,
        "name": name,
        "status": "ready",
        "status_details": {},
    }
