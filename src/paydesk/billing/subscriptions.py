"""Subscriptions to the three tiers: create, change tier, cancel, resume.

Tier changes take effect at once. Upgrades are prorated and invoiced
immediately (``always_invoice``): the customer pays the difference for the rest
of the period now. Downgrades are prorated too (``create_prorations``): the
unused part of the dearer tier becomes a credit on the next invoice. Choosing
"immediately, with credit" over "at period end" keeps one code path and gives
the customer the lower tier's limits only once they pay less.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.billing import promotions
from paydesk.billing.mirror import apply_customer, apply_invoice, apply_subscription
from paydesk.billing.tiers import TIER_BY_KEY, TIER_RANK, configured_price_ids, tier_resolver
from paydesk.db.models import Customer, Subscription
from paydesk.errors import Conflict, InvalidInput, NotFound
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.stripe_gateway.params import SubscriptionCreateParams, SubscriptionUpdateParams

# Statuses in which a subscription still counts as the customer's one subscription.
LIVE_STATUSES = ("active", "trialing", "past_due", "incomplete", "unpaid", "paused")
CHANGEABLE_STATUSES = ("active", "trialing", "past_due")


@dataclass(frozen=True)
class SubscriptionOutcome:
    """The mirrored subscription, plus the secret a front end confirms payment with."""

    subscription: Subscription
    client_secret: str | None
    payment_status: str | None


def get_subscription(session: Session, subscription_id: str) -> Subscription:
    """A mirrored subscription by id, or ``NotFound``."""
    row = session.scalars(
        select(Subscription).where(Subscription.stripe_id == subscription_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"No such subscription: '{subscription_id}'.", code="subscription_not_found")
    return row


def live_subscription(session: Session, customer: Customer) -> Subscription | None:
    """The customer's subscription that is not canceled or expired, if any."""
    return session.scalars(
        select(Subscription)
        .where(Subscription.customer_id == customer.stripe_id)
        .where(Subscription.status.in_(LIVE_STATUSES))
        .order_by(Subscription.stripe_created.desc())
    ).first()


def _price_for(settings: Settings, tier_key: str) -> str:
    if tier_key not in TIER_BY_KEY:
        raise InvalidInput(f"tier must be one of {', '.join(TIER_BY_KEY)}.", field="tier")
    price = configured_price_ids(settings)[tier_key]
    if not price:
        raise InvalidInput(
            f"The {tier_key} tier has no price configured ({TIER_BY_KEY[tier_key].variable}).",
            code="tier_not_configured",
            field="tier",
        )
    return price


def _mirror(
    session: Session, settings: Settings, subscription: dict[str, Any]
) -> SubscriptionOutcome:
    now = int(time.time())
    row, _ = apply_subscription(session, subscription, now, tier_resolver(settings))
    invoice = subscription.get("latest_invoice")
    secret: str | None = None
    payment_status: str | None = None
    if isinstance(invoice, dict):
        apply_invoice(session, invoice, now)
        secret = (invoice.get("confirmation_secret") or {}).get("client_secret")
        payment_status = "paid" if invoice.get("status") == "paid" else invoice.get("status")
    return SubscriptionOutcome(row, secret, payment_status)


def _use_payment_method(
    session: Session, gateway: StripeGateway, customer: Customer, payment_method: str
) -> str:
    attached = gateway.attach_payment_method(
        payment_method,
        customer.stripe_id,
        key=operation_key("attach", customer.stripe_id, payment_method),
    )
    updated = gateway.set_default_payment_method(
        customer.stripe_id,
        attached["id"],
        key=operation_key("default-pm", customer.stripe_id, attached["id"]),
    )
    apply_customer(session, updated, int(time.time()))
    return str(attached["id"])


def create_subscription(
    session: Session,
    gateway: StripeGateway,
    settings: Settings,
    customer: Customer,
    *,
    tier: str,
    request_key: str,
    payment_method: str | None = None,
    promotion: promotions.Promotion | None = None,
) -> SubscriptionOutcome:
    """Subscribe ``customer`` to ``tier`` (one live subscription per customer).

    Free needs no card. A paid tier with ``payment_method`` is charged at once
    (3-D Secure leaves it ``incomplete`` with a ``client_secret`` to finish);
    without one it is created ``incomplete`` (``default_incomplete``) and the
    returned ``client_secret`` lets the front end confirm the first payment.
    A ``promotion`` (from :func:`promotions.find_promotion`) discounts the
    subscription's invoices while its coupon lasts; it applies to paid tiers only.
    """
    price = _price_for(settings, tier)
    if live_subscription(session, customer) is not None:
        raise Conflict(
            "The customer already has a subscription; change its tier instead.",
            code="subscription_exists",
        )
    if promotion is not None:
        if TIER_BY_KEY[tier].unit_amount == 0:
            raise InvalidInput(
                "Promotion codes apply to paid plans only.",
                code=promotions.CODE,
                field=promotions.FIELD,
            )
        promotions.check_customer(session, promotion, customer.stripe_id)
    params: SubscriptionCreateParams = {
        "customer": customer.stripe_id,
        "items": [{"price": price}],
        "metadata": {"paydesk_tier": tier},
    }
    if TIER_BY_KEY[tier].unit_amount > 0:
        if payment_method:
            params["default_payment_method"] = _use_payment_method(
                session, gateway, customer, payment_method
            )
            params["payment_behavior"] = "allow_incomplete"
        else:
            params["payment_behavior"] = "default_incomplete"
            params["payment_settings"] = {"save_default_payment_method": "on_subscription"}
    if promotion is not None:
        params["discounts"] = [{"promotion_code": promotion.id}]
    # The code is part of the operation: the same request with another code is another.
    parts = (request_key, promotion.id) if promotion is not None else (request_key,)
    try:
        created = gateway.create_subscription(
            params, key=operation_key("subscribe", customer.stripe_id, *parts)
        )
    except InvalidInput as exc:
        refused = promotions.refused_by_stripe(exc)
        if refused is None:
            raise
        raise refused from exc
    return _mirror(session, settings, created)


def change_tier(
    session: Session,
    gateway: StripeGateway,
    settings: Settings,
    subscription_id: str,
    *,
    tier: str,
    request_key: str,
    payment_method: str | None = None,
) -> SubscriptionOutcome:
    """Move a subscription to another tier now: upgrades invoiced, downgrades credited."""
    price = _price_for(settings, tier)
    row = get_subscription(session, subscription_id)
    if row.status not in CHANGEABLE_STATUSES:
        raise Conflict(
            f"The subscription is {row.status}; only active ones can change tier.",
            code="subscription_not_changeable",
        )
    if row.price_id == price:
        raise Conflict(f"The subscription is already on the {tier} tier.", code="same_tier")
    if row.item_id is None:
        raise Conflict("The subscription has no item to change.", code="subscription_malformed")
    current_rank = TIER_RANK.get(row.tier or "", -1)
    upgrade = TIER_RANK[tier] > current_rank
    params: SubscriptionUpdateParams = {
        "items": [{"id": row.item_id, "price": price}],
        "proration_behavior": "always_invoice" if upgrade else "create_prorations",
        "metadata": {"paydesk_tier": tier},
        "cancel_at_period_end": False,
    }
    if payment_method:
        customer = session.scalars(
            select(Customer).where(Customer.stripe_id == row.customer_id)
        ).one()
        params["default_payment_method"] = _use_payment_method(
            session, gateway, customer, payment_method
        )
    elif upgrade and TIER_BY_KEY[tier].unit_amount > 0 and not _has_payment_method(session, row):
        raise InvalidInput(
            "A card is needed to move to a paid tier.", code="payment_method_required",
            field="payment_method",
        )  # fmt: skip
    updated = gateway.update_subscription(
        row.stripe_id, params, key=operation_key("change-tier", row.stripe_id, request_key)
    )
    return _mirror(session, settings, updated)


def _has_payment_method(session: Session, row: Subscription) -> bool:
    if row.default_payment_method_id:
        return True
    customer = session.scalars(
        select(Customer).where(Customer.stripe_id == row.customer_id)
    ).one_or_none()
    return bool(customer and customer.default_payment_method_id)


def cancel_subscription(
    session: Session,
    gateway: StripeGateway,
    settings: Settings,
    subscription_id: str,
    *,
    at_period_end: bool,
) -> SubscriptionOutcome:
    """Cancel now, or at the end of the current period (undone by ``resume``)."""
    row = get_subscription(session, subscription_id)
    if row.status not in LIVE_STATUSES:
        raise Conflict(f"The subscription is already {row.status}.", code="subscription_ended")
    if at_period_end:
        if row.cancel_at_period_end:
            raise Conflict("The subscription already ends at period end.", code="already_canceling")
        updated = gateway.update_subscription(
            row.stripe_id,
            {"cancel_at_period_end": True},
            key=operation_key("cancel-at-period-end", row.stripe_id, row.source_time),
        )
        return _mirror(session, settings, updated)
    try:
        canceled = gateway.cancel_subscription(
            row.stripe_id, key=operation_key("cancel-now", row.stripe_id)
        )
    except (NotFound, Conflict):
        # DELETE has no idempotent replay: when an earlier try's answer was lost (the
        # SDK's retry, or the admin repeating a 503), Stripe now says "already
        # canceled". That is this cancellation having been applied: mirror it.
        canceled = gateway.retrieve_subscription(row.stripe_id)
        if canceled.get("status") != "canceled":
            raise
    return _mirror(session, settings, canceled)


def resume_subscription(
    session: Session, gateway: StripeGateway, settings: Settings, subscription_id: str
) -> SubscriptionOutcome:
    """Undo a cancellation at period end, before the period ends."""
    row = get_subscription(session, subscription_id)
    if not row.cancel_at_period_end or row.status not in LIVE_STATUSES:
        raise Conflict(
            "Only a subscription set to cancel at period end can be resumed.",
            code="subscription_not_resumable",
        )
    updated = gateway.update_subscription(
        row.stripe_id,
        {"cancel_at_period_end": False},
        key=operation_key("resume", row.stripe_id, row.source_time),
    )
    return _mirror(session, settings, updated)


def refresh_subscription(
    session: Session, gateway: StripeGateway, settings: Settings, subscription_id: str
) -> Subscription:
    """Re-read a subscription from Stripe into the mirror."""
    return _mirror(session, settings, gateway.retrieve_subscription(subscription_id)).subscription
