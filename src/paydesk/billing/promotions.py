"""Promotion codes a customer types when subscribing ("SPRING25").

The code is looked up at Stripe (``promotion_codes.list(code=…, active=true)``)
and checked before anything is created: unknown, inactive, expired, fully
redeemed, meant for another customer, or for first-time customers only when the
customer has paid before. Every refusal is one ``InvalidInput`` with the code
``promotion_code_invalid`` naming the field ``promotion_code``; Stripe checks the
same limits again when the subscription is created, and its refusal is reported
the same way (:func:`refused_by_stripe`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.db.models import Invoice
from paydesk.errors import InvalidInput
from paydesk.money import Money
from paydesk.stripe_gateway import StripeGateway

FIELD = "promotion_code"
CODE = "promotion_code_invalid"
MAX_LENGTH = 100
# Stripe's customer-facing codes: letters, digits, dashes and underscores.
_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,100}")


@dataclass(frozen=True)
class Promotion:
    """A redeemable promotion code and what its coupon takes off."""

    id: str
    code: str
    coupon_id: str
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: str
    duration_in_months: int | None
    first_time_only: bool

    def discounted(self, amount: int, currency: str) -> int:
        """``amount`` (minor units) after this discount, as Stripe computes a line."""
        if self.percent_off is not None:
            off = (amount * round(self.percent_off * 100) + 5_000) // 10_000
        elif self.amount_off is not None and self.currency == currency:
            off = self.amount_off
        else:
            off = 0
        return max(amount - min(off, amount), 0)

    def describe(self) -> str:
        """ "25% off" / "5.00 USD off", and for how long."""
        if self.percent_off is not None:
            what = f"{self.percent_off:g}% off"
        else:
            what = f"{Money(self.amount_off or 0, self.currency or 'usd').format()} off"
        if self.duration == "forever":
            return f"{what} every invoice"
        if self.duration == "repeating" and self.duration_in_months:
            months = self.duration_in_months
            return f"{what} for {months} month{'s' if months != 1 else ''}"
        return f"{what} the first invoice"


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, code=CODE, field=FIELD)


def normalize(raw: str) -> str:
    """The code as typed, trimmed; refused unless it has the shape of a code."""
    code = raw.strip()
    if not _SHAPE.fullmatch(code):
        raise _refuse("This promotion code is not valid.")
    return code


def find_promotion(
    gateway: StripeGateway,
    raw: str,
    *,
    customer_id: str | None,
    now: int | None = None,
) -> Promotion:
    """The active promotion code ``raw`` (case-insensitive) that ``customer_id`` (None:
    a customer not created yet) may redeem, or ``InvalidInput`` on ``promotion_code``."""
    code = normalize(raw)
    now = int(time.time()) if now is None else now
    found = [
        p
        for p in gateway.find_promotion_codes(code)
        if str(p.get("code", "")).lower() == code.lower()
    ]
    if not found:
        raise _refuse(f"The promotion code {code} is not valid.")
    promo = found[0]
    expires_at = promo.get("expires_at")
    if expires_at is not None and int(expires_at) <= now:
        raise _refuse(f"The promotion code {code} has expired.")
    limit = promo.get("max_redemptions")
    if limit is not None and int(promo.get("times_redeemed") or 0) >= int(limit):
        raise _refuse(f"The promotion code {code} has been fully redeemed.")
    if promo.get("customer") is not None and promo.get("customer") != customer_id:
        raise _refuse(f"The promotion code {code} is not valid for this account.")
    coupon_id = _coupon_id(promo)
    coupon = gateway.retrieve_coupon(coupon_id)
    if not coupon.get("valid", True):
        raise _refuse(f"The promotion code {code} is no longer valid.")
    restrictions = promo.get("restrictions") or {}
    return Promotion(
        id=str(promo["id"]),
        code=str(promo.get("code") or code),
        coupon_id=coupon_id,
        percent_off=coupon.get("percent_off"),
        amount_off=coupon.get("amount_off"),
        currency=coupon.get("currency"),
        duration=str(coupon.get("duration") or "once"),
        duration_in_months=coupon.get("duration_in_months"),
        first_time_only=bool(restrictions.get("first_time_transaction")),
    )


def _coupon_id(promo: dict[str, Any]) -> str:
    # API versions since 2025-09 name it promotion.coupon; older ones coupon (an object).
    promotion = promo.get("promotion") or {}
    coupon: Any = promotion.get("coupon") or promo.get("coupon")
    if isinstance(coupon, dict):
        coupon = coupon.get("id")
    if not coupon:
        raise _refuse("This promotion code is not valid.")
    return str(coupon)


def check_customer(session: Session, promotion: Promotion, customer_id: str) -> None:
    """Refuse a first-time-only code to a customer who has paid an invoice before."""
    if not promotion.first_time_only:
        return
    paid = session.scalars(
        select(Invoice.id)
        .where(Invoice.customer_id == customer_id, Invoice.status == "paid")
        .where(Invoice.amount_paid > 0)
        .limit(1)
    ).first()
    if paid is not None:
        raise _refuse(f"The promotion code {promotion.code} is for first-time customers only.")


def refused_by_stripe(exc: InvalidInput) -> InvalidInput | None:
    """Stripe's refusal of ``discounts[…]`` as a refusal of ``promotion_code``."""
    if not (exc.field or "").startswith("discounts"):
        return None
    return InvalidInput(exc.message, code=CODE, field=FIELD, details=exc.details)
