"""The portal in a real browser (Playwright driving Debian's chromium) against the sandbox.

Cards are typed into the sandbox Stripe.js stand-in's card iframe; 3-D Secure is
completed or failed on its challenge page; the worker applies the real signed
webhooks. Every request the browser sends to Paydesk is captured: no card number
ever reaches Paydesk's server (nor its logs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from paydesk.db.models import Customer, Subscription
from tests.support.waiting import poll
from tests.web.portal.conftest import Portal

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
CARD_NUMBERS = re.compile(r"4[0-9]{3}\s?[0-9]{4}\s?[0-9]{4}\s?[0-9]{4}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing at /usr/bin/chromium")
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"portal-{name}.png"), full_page=True)


class Watch:
    """Every request the page sends to Paydesk, with its body."""

    def __init__(self, page: Any, base: str) -> None:
        self.sent: list[str] = []
        self.console: list[str] = []
        page.on("request", self._request(base))
        page.on("console", lambda message: self.console.append(message.text))

    def _request(self, base: str) -> Any:
        def record(request: Any) -> None:
            if request.url.startswith(base):
                self.sent.append(f"{request.method} {request.url} {request.post_data or ''}")

        return record

    def assert_no_card_number(self) -> None:
        for sent in self.sent:
            assert not CARD_NUMBERS.search(sent), sent
            assert "cvc" not in sent.lower()


def type_card(page: Any, number: str, exp: str = "12 / 34", cvc: str = "123") -> None:
    frame = page.frame_locator("#card-element iframe")
    frame.locator("[autocomplete=cc-number]").fill(number)
    frame.locator("[autocomplete=cc-exp]").fill(exp)
    frame.locator("[autocomplete=cc-csc]").fill(cvc)
    frame.locator("[autocomplete=postal-code]").fill("10001")


def card_error(page: Any, text: str) -> str:
    """Wait for the card field's error to say ``text``; return the whole message."""
    errors = page.locator("#card-errors")
    errors.filter(has_text=text).wait_for()
    return str(errors.inner_text())


def challenge(page: Any, button: str) -> None:
    frame = page.frame_locator("iframe[name=__stripeSandbox3DS]")
    frame.get_by_role("button", name=button).click()


def subscription_of(portal: Portal, user: str) -> Subscription | None:
    with portal.stack.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.user_id == user)).one_or_none()
        if customer is None:
            return None
        return session.scalars(
            select(Subscription).where(Subscription.customer_id == customer.stripe_id)
        ).first()


def open_portal(
    browser: Any, portal: Portal, user: str, width: int = 1366
) -> tuple[Any, Any, Watch]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    watch = Watch(page, portal.base)
    page.goto(portal.link(user))
    page.wait_for_url(re.compile(r".*/portal/$"))
    return context, page, watch


def test_subscribe_with_4242_then_change_cancel_resume_and_replace_card(
    browser: Any, portal: Portal, capfd: pytest.CaptureFixture[str]
) -> None:
    context, page, watch = open_portal(browser, portal, "pia")
    shot(page, "overview-empty")
    page.get_by_role("link", name="Plans", exact=True).click()
    shot(page, "plans")
    page.get_by_role("link", name="Subscribe to CloudToLocalLLM Premium").click()
    # Invalid input is caught in the card field, as Stripe's does.
    type_card(page, "4242 4242 4242 4241")
    page.get_by_role("button", name="Subscribe").click()
    assert card_error(page, "invalid") == "Your card number is invalid."
    type_card(page, "4242424242424242", exp="01 / 20")
    page.get_by_role("button", name="Subscribe").click()
    card_error(page, "expiration year is in the past")
    type_card(page, "4242424242424242", cvc="1")
    page.get_by_role("button", name="Subscribe").click()
    card_error(page, "security code is incomplete")
    assert subscription_of(portal, "pia") is None
    type_card(page, "4242424242424242")
    shot(page, "checkout")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(re.compile(r".*/portal/\?done=subscribed$"))
    assert page.locator("#sub-status").inner_text() == "active"
    assert page.locator("#sub-tier").inner_text() == "CloudToLocalLLM Premium"
    assert "9.99 USD" in page.locator("#sub-amount").inner_text()
    shot(page, "subscribed")
    row = subscription_of(portal, "pia")
    assert row is not None
    assert row.status == "active"

    # Upgrade with a proration preview first.
    page.get_by_label("New plan").select_option("enterprise")
    page.get_by_role("button", name="Preview change…").click()
    assert "Total" in page.locator("#preview").inner_text()
    shot(page, "tier-preview")
    page.get_by_role("button", name="Confirm change to CloudToLocalLLM Enterprise").click()
    assert page.locator("#sub-tier").inner_text() == "CloudToLocalLLM Enterprise"
    # Downgrade.
    page.get_by_label("New plan").select_option("premium")
    page.get_by_role("button", name="Preview change…").click()
    assert "credit" in page.locator("#preview").inner_text()
    page.get_by_role("button", name="Confirm change to CloudToLocalLLM Premium").click()
    assert page.locator("#sub-tier").inner_text() == "CloudToLocalLLM Premium"
    # Cancel at period end, then resume.
    page.get_by_role("button", name="Cancel at period end").click()
    assert "ends at the end of the current period" in page.locator("#sub-ending").inner_text()
    page.get_by_role("button", name="Resume subscription").click()
    assert page.locator("#sub-ending").count() == 0
    assert page.locator("#notice").inner_text() == "Your subscription will continue."

    # Replace the card with one that asks for 3-D Secure on setup.
    page.get_by_role("link", name="Payment method").click()
    type_card(page, "4000002500003155")
    page.get_by_role("button", name="Save card").click()
    challenge(page, "Complete authentication")
    page.wait_for_url(re.compile(r".*/portal/\?done=card$"))
    with portal.stack.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.user_id == "pia")).one()
        card = portal.stack.sdk.v1.payment_methods.retrieve(customer.default_payment_method_id)
    assert card.card.last4 == "3155"

    page.get_by_role("link", name="Invoices").click()
    assert "paid" in page.locator("#invoices").inner_text()
    shot(page, "invoices")
    page.locator("#invoices").get_by_role("link", name="View").first.click()
    assert page.locator("#receipt").is_visible()

    watch.assert_no_card_number()
    logged = capfd.readouterr()
    for text in (logged.out, logged.err):
        assert "4242424242424242" not in text
        assert "4000002500003155" not in text
    context.close()


def test_declined_card_creates_nothing(browser: Any, portal: Portal) -> None:
    context, page, watch = open_portal(browser, portal, "quinn", width=390)
    page.goto(f"{portal.base}/portal/checkout/premium")
    type_card(page, "4000000000000002")
    page.get_by_role("button", name="Subscribe").click()
    assert card_error(page, "declined") == "Your card was declined."
    shot(page, "declined-390")
    assert subscription_of(portal, "quinn") is None
    found = portal.stack.sdk.v1.subscriptions.list({"limit": 100})
    with portal.stack.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.user_id == "quinn")).one()
    assert all(sub.customer != customer.stripe_id for sub in found.data)
    # Insufficient funds says so.
    type_card(page, "4000000000009995")
    page.get_by_role("button", name="Subscribe").click()
    card_error(page, "insufficient funds")
    watch.assert_no_card_number()
    context.close()


def test_3ds_fail_then_retry_with_4242_then_complete(browser: Any, portal: Portal) -> None:
    context, page, watch = open_portal(browser, portal, "ray")
    page.goto(f"{portal.base}/portal/checkout/premium")
    type_card(page, "4000002500003155")
    page.get_by_role("button", name="Subscribe").click()
    page.frame_locator("iframe[name=__stripeSandbox3DS]").get_by_role(
        "button", name="Fail authentication"
    ).wait_for()
    shot(page, "challenge")
    challenge(page, "Fail authentication")
    card_error(page, "Authentication failed")
    shot(page, "auth-failed")
    row = subscription_of(portal, "ray")
    assert row is not None
    assert row.status == "incomplete"
    invoice_id = row.latest_invoice_id
    assert invoice_id is not None
    invoice = portal.stack.sdk.v1.invoices.retrieve(invoice_id, {"expand": ["confirmation_secret"]})
    intent_id = invoice.confirmation_secret.client_secret.split("_secret_")[0]
    assert portal.stack.sdk.v1.payment_intents.retrieve(intent_id).status == (
        "requires_payment_method"
    )
    # Retry with 4242: the same subscription's first invoice is paid.
    type_card(page, "4242424242424242")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(re.compile(r".*/portal/\?done=subscribed$"))
    assert page.locator("#sub-status").inner_text() == "active"
    fresh = subscription_of(portal, "ray")
    assert fresh is not None
    assert fresh.stripe_id == row.stripe_id
    watch.assert_no_card_number()
    context.close()

    # Another customer: 3-D Secure completed → active, and the webhook agrees.
    context, page, watch = open_portal(browser, portal, "sam", width=390)
    page.goto(f"{portal.base}/portal/checkout/enterprise")
    type_card(page, "4000002760003184")
    page.get_by_role("button", name="Subscribe").click()
    challenge(page, "Complete authentication")
    page.wait_for_url(re.compile(r".*/portal/\?done=subscribed$"))
    assert page.locator("#sub-status").inner_text() == "active"
    shot(page, "subscribed-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    poll(
        lambda: (row := subscription_of(portal, "sam")) and row.status == "active",
        timeout=60,
        what="the mirror to show the subscription active",
    )
    watch.assert_no_card_number()
    context.close()


def test_pay_link_pays_a_payment_that_needs_action(browser: Any, portal: Portal) -> None:
    from tests.web.portal.conftest import admin_api, payment_needing_action

    payment_id = payment_needing_action(portal, "uma")
    link = admin_api(portal).post(f"/api/admin/payments/{payment_id}/pay-link").json()["url"]
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    watch = Watch(page, portal.base)
    page.goto(link)
    page.wait_for_url(re.compile(rf".*/portal/pay/{payment_id}$"))
    shot(page, "pay-link-390")
    # A declined card first, then one that asks for 3-D Secure.
    type_card(page, "4000000000000341")
    page.get_by_role("button", name="Pay 42.00 USD").click()
    assert card_error(page, "declined") == "Your card was declined."
    type_card(page, "4000000000003220")
    page.get_by_role("button", name="Pay 42.00 USD").click()
    challenge(page, "Complete authentication")
    page.locator("#paid").wait_for()
    assert portal.stack.sdk.v1.payment_intents.retrieve(payment_id).status == "succeeded"
    watch.assert_no_card_number()
    context.close()
