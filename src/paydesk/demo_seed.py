"""Demo data for ``paydesk demo``: a first admin and a small, believable business.

Runs once (when no admin exists yet). Everything goes through Paydesk's own
services and the Stripe sandbox, so the mirror, the webhook inbox and the audit
log fill exactly as they would in use: customers, successful and declined
payments, partial and full refunds, subscriptions on every tier with upgrades,
downgrades and churn, and a few disputes (the sandbox's dispute test cards).

Not yet: months of history via test clocks — the rows are created "now", so the
dashboard's month charts show the current month only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from paydesk.auth import accounts
from paydesk.billing.customers import ensure_customer
from paydesk.billing.payments import PaymentRequest, create_payment
from paydesk.billing.refunds import RefundRequest, refund_payment
from paydesk.billing.subscriptions import cancel_subscription, change_tier, create_subscription
from paydesk.db.engine import session_factory
from paydesk.db.models import AdminUser
from paydesk.errors import PaydeskError
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway

DEMO_ADMIN = "admin@paydesk.demo"
FIRST_NAMES = ("Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen")
# Weighted test cards: mostly fine, some declines, a few disputes.
CARDS = (
    ["pm_card_visa"] * 14
    + ["pm_card_mastercard"] * 4
    + ["pm_card_visa_chargeDeclinedInsufficientFunds", "pm_card_chargeDeclined"]
    + ["pm_card_createDispute"]
)


@dataclass(frozen=True)
class SeededAdmin:
    """The first admin: shown once by the demo, never stored in the clear."""

    email: str
    password: str


def create_first_admin(settings: Settings, engine: Engine) -> SeededAdmin | None:
    """The first admin, on a database without admins (first run); otherwise None."""
    with session_factory(engine)() as session:
        if session.scalar(select(func.count()).select_from(AdminUser)):
            return None
        user, password = accounts.create_admin(
            session, settings, email=DEMO_ADMIN, role="admin", actor="demo"
        )
        session.commit()
        return SeededAdmin(user.email, password)


def seed_business(
    settings: Settings,
    engine: Engine,
    gateway: StripeGateway,
    *,
    customers: int = 200,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Customers, payments, declines, refunds, subscriptions, tier changes, churn, disputes."""
    rng = random.Random(7)  # noqa: S311 - demo data, not security
    sessions = session_factory(engine)
    for number in range(customers):
        with sessions() as session:
            try:
                _one_customer(session, settings, gateway, rng, number)
                session.commit()
            except PaydeskError:
                session.commit()  # a decline is part of the story; keep what was mirrored
        if progress is not None and number % 50 == 49:
            progress(f"demo data: {number + 1}/{customers} customers")


def _one_customer(
    session: Session, settings: Settings, gateway: StripeGateway, rng: random.Random, n: int
) -> None:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    customer = ensure_customer(
        session,
        gateway,
        user_id=f"demo-user-{n}",
        email=f"{first}.{last}.{n}@example.com".lower(),
        name=f"{first} {last}",
    )
    for attempt in range(rng.choice((1, 1, 2, 3))):
        card = rng.choice(CARDS)
        amount = rng.choice((900, 1500, 2500, 4900, 9900, 19900))
        try:
            outcome = create_payment(
                session,
                gateway,
                customer,
                PaymentRequest(
                    amount=amount,
                    currency="usd",
                    request_key=f"demo-pay-{n}-{attempt}",
                    payment_method=card,
                    description="Demo order",
                ),
            )
        except PaydeskError:
            continue
        if outcome.payment.status == "succeeded" and rng.random() < 0.12:
            refund_payment(
                session,
                gateway,
                RefundRequest(
                    payment_id=outcome.payment.stripe_id,
                    requested_by=DEMO_ADMIN,
                    amount=None if rng.random() < 0.5 else amount // 2,
                    reason="requested_by_customer",
                    request_key=f"demo-refund-{n}-{attempt}",
                ),
            )
    roll = rng.random()
    if roll < 0.35:
        return
    tier = "free" if roll < 0.5 else ("premium" if roll < 0.85 else "enterprise")
    subscribed = create_subscription(
        session,
        gateway,
        settings,
        customer,
        tier=tier,
        request_key=f"demo-sub-{n}",
        payment_method=None if tier == "free" else "pm_card_visa",
    )
    sub = subscribed.subscription.stripe_id
    change = rng.random()
    if tier == "premium" and change < 0.2:
        change_tier(session, gateway, settings, sub, tier="enterprise", request_key=f"demo-up-{n}")
    elif tier == "enterprise" and change < 0.2:
        change_tier(session, gateway, settings, sub, tier="premium", request_key=f"demo-down-{n}")
    elif change > 0.9:
        cancel_subscription(session, gateway, settings, sub, at_period_end=change > 0.95)
