"""The console in a real browser (Playwright driving Debian's chromium).

Signs in with TOTP, refunds part of a payment, changes a tier, cancels at period
end, replays a failed webhook event and is refused an action the role lacks;
saves a screenshot of each main page under ``artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paydesk.db.models import StripeEvent
from paydesk.web import create_app
from tests.support.admins import SeededAdmin, make_admin, make_token
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing at /usr/bin/chromium (.ci/run installs it)")
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, base: str, admin: SeededAdmin) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    if admin.seed is not None:
        page.get_by_label("6-digit code from your authenticator app").fill(admin.code())
        page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r".*/admin/?$"))


def seed_business(stack: Stack, base: str, admin: SeededAdmin) -> dict[str, str]:
    token = make_token(stack.sessions, stack.settings, admin)
    with httpx.Client(
        base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        customer = api.post(
            "/api/admin/customers", json={"user_id": "b-1", "email": "grace@example.com"}
        ).json()["id"]
        payment = api.post(
            "/api/admin/payments",
            json={
                "customer": customer,
                "amount": 4200,
                "currency": "usd",
                "payment_method": "pm_card_visa",
            },
        ).json()["payment"]["id"]
        subscription = api.post(
            "/api/admin/subscriptions",
            json={"customer": customer, "tier": "premium", "payment_method": "pm_card_visa"},
        ).json()["subscription"]["id"]
    with stack.sessions() as session:
        session.add(
            StripeEvent(
                event_id="evt_browser_failed",
                type="invoice.paid",
                created=1_790_000_000,
                payload="{}",
                status="failed",
                attempts=8,
                last_error="KeyError: 'lines'",
            )
        )
        session.commit()
    return {"payment": payment, "subscription": subscription}


def test_console_in_a_browser(browser: Any, stack: Stack) -> None:
    finance = make_admin(stack.sessions, stack.settings, "finance")
    viewer = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        ids = seed_business(stack, base, finance)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{base}/admin/login")
        shot(page, "login")
        sign_in(page, base, finance)
        assert page.locator(".mode").inner_text() == "TEST"
        shot(page, "dashboard")

        # Refund part of a payment, with confirmation.
        page.get_by_role("link", name="Payments").click()
        shot(page, "payments")
        page.get_by_role("link", name=ids["payment"]).click()
        page.get_by_label(re.compile("Amount in USD")).fill("5.00")
        page.get_by_label("Reason").select_option("requested_by_customer")
        page.get_by_role("button", name="Review refund…").click()
        assert "Refund 5.00 USD" in page.locator(".confirm").inner_text()
        shot(page, "refund-confirm")
        page.get_by_role("button", name="Refund").click()
        assert page.locator("#amount-refunded").inner_text() == "5.00 USD"
        assert finance.email in page.locator("table").first.inner_text()
        shot(page, "payment-detail")

        # Change the tier, then cancel at period end.
        page.get_by_role("link", name="Subscriptions").click()
        shot(page, "subscriptions")
        page.get_by_role("link", name=ids["subscription"]).click()
        page.get_by_label("New tier").select_option("enterprise")
        page.get_by_role("button", name="Change tier…").click()
        page.get_by_role("button", name="Change tier").click()
        assert page.locator("#sub-tier").inner_text() == "enterprise"
        page.get_by_label("At period end").check()
        page.get_by_role("button", name="Cancel subscription…").click()
        assert "at the end of the period" in page.locator(".confirm").inner_text()
        page.get_by_role("button", name="Cancel subscription").click()
        assert page.locator("#sub-cancel-at-period-end").inner_text() == "yes"
        shot(page, "subscription-detail")

        # Replay a failed webhook event.
        page.get_by_role("link", name="Webhook events").click()
        row = page.locator("#event-evt_browser_failed")
        assert "KeyError" in row.inner_text()
        shot(page, "events")
        row.get_by_role("button", name="Replay evt_browser_failed").click()
        page.get_by_role("button", name="Replay").click()
        assert "queued for replay" in page.locator(".notice").inner_text()
        assert "pending" in page.locator("#event-evt_browser_failed").inner_text()

        for name, label in [
            ("customers", "Customers"),
            ("disputes", "Disputes"),
            ("alerts", "Alerts"),
            ("audit", "Audit log"),
            ("access", "Admins & tokens"),
            ("settings", "Settings & health"),
        ]:
            page.get_by_role("link", name=label).click()
            shot(page, name)
        audit_text = page.goto(f"{base}/admin/audit").text()
        for action in (
            "refund.create",
            "subscription.change_tier",
            "subscription.cancel",
            "event.replay",
        ):
            assert action in audit_text
        context.close()

        # A viewer sees no refund form and is refused the action itself.
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, base, viewer)
        page.goto(f"{base}/admin/payments/{ids['payment']}")
        assert page.locator("#refund-form").count() == 0
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
        refused = page.request.post(
            f"{base}/admin/payments/{ids['payment']}/refund",
            form={"csrf_token": csrf, "amount": "1.00", "confirm": "yes"},
        )
        assert refused.status == 403
        assert "permission_denied" in refused.text()
        page.goto(f"{base}/admin/audit")
        assert "may not audit.read" in page.locator(".error").inner_text()
        shot(page, "refused")
        context.close()


def test_change_password_in_a_browser(browser: Any, stack: Stack) -> None:
    admin = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
    new_password = "a fresh and longer passphrase"
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, base, admin)
        page.get_by_role("link", name="Change password").click()
        page.wait_for_url(re.compile(r".*/admin/password$"))
        # The two new passwords differ: refused, said so, nothing typed is shown back.
        page.get_by_label("Current password").fill(admin.password)
        page.get_by_label("New password", exact=True).fill(new_password)
        page.get_by_label("New password again").fill(new_password + "!")
        page.get_by_role("button", name="Change password").click()
        assert "differ" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("New password", exact=True).input_value() == ""
        shot(page, "password-refused")
        page.get_by_label("Current password").fill(admin.password)
        page.get_by_label("New password", exact=True).fill(new_password)
        page.get_by_label("New password again").fill(new_password)
        page.get_by_role("button", name="Change password").click()
        assert "password was changed" in page.locator("#password-changed").inner_text()
        shot(page, "password-changed")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r".*/admin/login$"))
        # The old password no longer signs in; the new one does.
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill(admin.password)
        page.get_by_role("button", name="Sign in").click()
        assert "Wrong email, password or code" in page.get_by_role("alert").inner_text()
        sign_in(page, base, SeededAdmin(admin.user_id, admin.email, new_password, None))
        assert admin.email in page.locator(".who").inner_text()
        context.close()
