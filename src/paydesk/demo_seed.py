"""Demo data for ``paydesk demo``: a first admin and a small, believable business.

Runs once (when no admin exists yet). Everything goes through Paydesk's own
services and the Stripe sandbox, so the mirror, the webhook inbox and the audit
log fill exactly as they would in use: customers, successful and declined
payments, partial and full refunds, subscriptions on every tier with upgrades,
downgrades and churn, and a few disputes (the sandbox's dispute test cards).

History: on the sandbox, a cohort of customers lives on a test clock started
five months ago; advancing it month by month renews their subscriptions (and
fails or disputes some renewals), with upgrades and churn along the way. Those
objects reach the mirror through webhooks, as in production, so the monthly
charts have months to show.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from paydesk.auth import accounts, tokens, two_factor
from paydesk.billing.customers import ensure_customer
from paydesk.billing.payments import PaymentRequest, create_payment
from paydesk.billing.refunds import RefundRequest, refund_payment
from paydesk.billing.subscriptions import cancel_subscription, change_tier, create_subscription
from paydesk.db.engine import session_factory
from paydesk.db.models import AdminUser
from paydesk.errors import PaydeskError
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway
from paydesk.web.notices import SeedProgress

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
    # An Admin API token of the first admin, so the README's curl lines work at once.
    api_token: str
    # Two-factor is mandatory for the admin role (and for its tokens): the demo enrols
    # the first admin and shows the otpauth URI once, for an authenticator app.
    totp_uri: str


def create_first_admin(settings: Settings, engine: Engine) -> SeededAdmin | None:
    """The first admin, on a database without admins (first run); otherwise None."""
    with session_factory(engine)() as session:
        if session.scalar(select(func.count()).select_from(AdminUser)):
            return None
        user, password = accounts.create_admin(
            session, settings, email=DEMO_ADMIN, role="admin", actor="demo"
        )
        seed = two_factor.start_enrolment(settings, user)
        user.totp_enabled = True
        _row, token = tokens.create(
            session, settings, user, name="demo curl", role="admin", days=30, actor="demo"
        )
        session.commit()
        return SeededAdmin(
            user.email, password, token, two_factor.provisioning_uri(seed, user.email)
        )


def seed_business(
    settings: Settings,
    engine: Engine,
    gateway: StripeGateway,
    *,
    customers: int = 200,
    progress: Callable[[str], None] | None = None,
    tracker: SeedProgress | None = None,
) -> None:
    """Customers, payments, declines, refunds, subscriptions, tier changes, churn, disputes.

    On the sandbox, the history cohort (:func:`seed_history`) is seeded at the same
    time in a second thread: it talks to the sandbox only, so the two overlap well.
    ``tracker`` is kept current for the console's banner; ``progress`` gets a line
    per 50 customers, per month and a final ``demo data ready`` line.
    """
    started = time.monotonic()
    tracker = tracker or SeedProgress()
    tracker.customers_total = customers
    history: threading.Thread | None = None
    errors: list[BaseException] = []
    if settings.stripe_api_base and settings.stripe_secret_key:
        tracker.months_total = HISTORY_MONTHS

        def run_history() -> None:
            try:
                seed_history(settings, progress=progress, tracker=tracker)
            except Exception as exc:  # noqa: BLE001 - reported on the banner and terminal
                errors.append(exc)

        history = threading.Thread(target=run_history, name="demo-history", daemon=True)
        history.start()
    rng = random.Random(7)  # noqa: S311 - demo data, not security
    sessions = session_factory(engine)
    try:
        for number in range(customers):
            with sessions() as session:
                try:
                    _one_customer(session, settings, gateway, rng, number)
                    session.commit()
                except PaydeskError:
                    session.commit()  # a decline is part of the story; keep what was mirrored
            tracker.customers_done = number + 1
            if progress is not None and number % 50 == 49:
                progress(f"demo data: {number + 1}/{customers} customers")
        if history is not None:
            history.join()
        if errors:
            raise errors[0]
    except Exception as exc:
        tracker.failed = f"{type(exc).__name__}: {exc}"[:200]
        if progress is not None:
            progress(f"demo data: seeding stopped ({tracker.failed})")
        raise
    tracker.done = True
    if progress is not None:
        progress(
            f"demo data ready: {customers} customers, {tracker.months_total} months of history "
            f"in {time.monotonic() - started:.0f} s"
        )


HISTORY_MONTHS = 5
MONTH = 30 * 86400


def seed_history(
    settings: Settings,
    *,
    customers: int = 30,
    progress: Callable[[str], None] | None = None,
    tracker: SeedProgress | None = None,
) -> None:
    """A cohort on a sandbox test clock, advanced month by month (sandbox only).

    Talks to the sandbox's Stripe API directly: test clocks are a test helper
    that Paydesk's gateway has no business offering in production.
    """
    if not (settings.stripe_api_base and settings.stripe_secret_key):
        raise ValueError("seed_history needs the sandbox (PAYDESK_STRIPE_API_BASE) and a key")
    rng = random.Random(11)  # noqa: S311 - demo data, not security
    key = settings.stripe_secret_key.get_secret_value()
    start = int(time.time()) - HISTORY_MONTHS * MONTH - 86400
    with httpx.Client(base_url=settings.stripe_api_base, auth=(key, ""), timeout=60) as api:
        clock = api.post("/v1/test_helpers/test_clocks", data={"frozen_time": start}).json()
        cohort: list[str] = []
        for n in range(customers):
            card = rng.choice(
                ["pm_card_visa"] * 12 + ["pm_card_chargeCustomerFail", "pm_card_createDispute"]
            )
            customer = api.post(
                "/v1/customers",
                data={
                    "email": f"early.{n}@example.com",
                    "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    "test_clock": clock["id"],
                    "metadata[user_id]": f"demo-early-{n}",
                },
            ).json()
            method = api.post(
                f"/v1/payment_methods/{card}/attach", data={"customer": customer["id"]}
            ).json()
            api.post(
                f"/v1/customers/{customer['id']}",
                data={"invoice_settings[default_payment_method]": method.get("id", card)},
            )
            tier = settings.stripe_price_enterprise if n % 5 == 0 else settings.stripe_price_premium
            subscription = api.post(
                "/v1/subscriptions",
                data={"customer": customer["id"], "items[0][price]": tier or ""},
            ).json()
            if "id" in subscription:
                cohort.append(subscription["id"])
        for month in range(1, HISTORY_MONTHS + 1):
            for subscription_id in rng.sample(cohort, k=max(len(cohort) // 10, 1)):
                _upgrade_or_churn(api, settings, rng, subscription_id)
            api.post(
                f"/v1/test_helpers/test_clocks/{clock['id']}/advance",
                data={"frozen_time": start + month * MONTH},
            )
            _wait_ready(api, clock["id"])
            if tracker is not None:
                tracker.month = month
            if progress is not None:
                progress(f"demo history: month {month}/{HISTORY_MONTHS}")


def _upgrade_or_churn(
    api: httpx.Client, settings: Settings, rng: random.Random, subscription_id: str
) -> None:
    current = api.get(f"/v1/subscriptions/{subscription_id}").json()
    if current.get("status") != "active":
        return
    if rng.random() < 0.5:
        api.delete(f"/v1/subscriptions/{subscription_id}")
        return
    item = current["items"]["data"][0]["id"]
    api.post(
        f"/v1/subscriptions/{subscription_id}",
        data={
            "items[0][id]": item,
            "items[0][price]": settings.stripe_price_enterprise or "",
            "proration_behavior": "create_prorations",
        },
    )


def _wait_ready(api: httpx.Client, clock_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.get(f"/v1/test_helpers/test_clocks/{clock_id}").json().get("status") == "ready":
            return
        time.sleep(0.1)


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
            session.commit()
            continue
        session.commit()
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
