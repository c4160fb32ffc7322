"""Demo seeding: the first admin once, and a business with every kind of row."""

from __future__ import annotations

from sqlalchemy import func, select

from paydesk import demo_seed
from paydesk.auth import accounts, tokens
from paydesk.db.models import AdminUser, Customer, Payment, Refund, Subscription
from paydesk.web.notices import Notices, SeedProgress
from tests.support.stack import Stack


def test_first_admin_once_and_a_believable_business(stack: Stack) -> None:
    admin = demo_seed.create_first_admin(stack.settings, stack.engine)
    assert admin is not None
    assert demo_seed.create_first_admin(stack.settings, stack.engine) is None
    tracker = SeedProgress()
    lines: list[str] = []
    seen_banners: list[str] = []
    notices = Notices(seed=tracker)

    def progress(line: str) -> None:
        lines.append(line)
        seen_banners.extend(notices.banners())

    demo_seed.seed_business(
        stack.settings,
        stack.engine,
        stack.gateway,
        customers=30,
        progress=progress,
        tracker=tracker,
    )
    assert tracker.done
    assert (tracker.customers_done, tracker.month) == (30, demo_seed.HISTORY_MONTHS)
    assert lines[-1].startswith("demo data ready: 30 customers, 5 months of history in ")
    assert any(b.startswith("Seeding demo data: ") and ", month " in b for b in seen_banners)
    assert notices.banners() == []  # done: the banner goes away
    with stack.sessions() as session:
        user = session.scalars(select(AdminUser)).one()
        assert user.role == "admin"
        assert admin.password not in user.password_hash
        assert accounts.check_password(
            session, stack.settings, admin.email, admin.password, source_address=None
        )
        # Enrolled in two-factor, so the printed API token is usable at once.
        assert user.totp_enabled
        assert admin.totp_uri.startswith("otpauth://totp/")
        assert tokens.authenticate(session, stack.settings, admin.api_token).role == "admin"

        def count(model: type) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        assert count(Customer) == 30
        statuses = set(session.scalars(select(Payment.status)))
        assert {"succeeded", "requires_payment_method"} <= statuses
        assert count(Refund) > 0
        tiers = set(session.scalars(select(Subscription.tier)))
        assert {"free", "premium", "enterprise"} <= tiers


def test_history_on_a_test_clock_reaches_back_months(stack: Stack) -> None:
    demo_seed.seed_history(stack.settings, customers=12)
    payments = stack.sdk.v1.payment_intents.list({"limit": 100}).data
    invoices = stack.sdk.v1.invoices.list({"limit": 100}).data
    oldest = min(int(invoice.created) for invoice in invoices)
    newest = max(int(invoice.created) for invoice in invoices)
    months = (newest - oldest) / demo_seed.MONTH
    assert months >= demo_seed.HISTORY_MONTHS - 1  # renewals of calendar months
    assert len(payments) >= 12 * demo_seed.HISTORY_MONTHS // 2
