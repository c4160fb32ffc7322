"""Operator flows of the console in a real browser, and the pages at 390 px wide.

Refund review errors next to the field (form kept) and the refund that follows;
creating a payment on a customer's page and its pay link;
capture of an authorised payment; cancel at period end then resume; the customer
page and the refunds page; no page touched here scrolls sideways on a phone.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from paydesk.web import create_app
from tests.support.admins import make_admin, make_token
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack
from tests.web.console.test_browser import browser, shot, sign_in

__all__ = ["browser"]


def seed(stack: Stack, base: str) -> dict[str, str]:
    admin = make_admin(stack.sessions, stack.settings, "admin", email="bseed@paydesk.test")
    token = make_token(stack.sessions, stack.settings, admin)
    with httpx.Client(
        base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        customer = api.post(
            "/api/admin/customers", json={"user_id": "bo-1", "email": "ada@example.com"}
        ).json()["id"]

        def pay(**extra: Any) -> str:
            body = {
                "customer": customer,
                "amount": 1999,
                "currency": "usd",
                "payment_method": "pm_card_visa",
            }
            made = api.post("/api/admin/payments", json={**body, **extra})
            assert made.status_code == 200, made.text
            return str(made.json()["payment"]["id"])

        subscription = api.post(
            "/api/admin/subscriptions",
            json={"customer": customer, "tier": "premium", "payment_method": "pm_card_visa"},
        ).json()["subscription"]["id"]
        return {
            "customer": customer,
            "payment": pay(),
            "authorised": pay(capture_method="manual"),
            "subscription": subscription,
        }


def no_sideways_scroll(page: Any) -> None:
    wide = page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    culprits = page.evaluate(
        """[...document.querySelectorAll('body *')]
        .filter(e => !e.closest('.scroll')
            && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
        .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)"""
    )
    assert wide, (page.url, page.evaluate("document.documentElement.scrollWidth"), culprits)


def test_operator_flows_in_a_browser(browser: Any, stack: Stack) -> None:
    finance = make_admin(stack.sessions, stack.settings, "finance")
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        ids = seed(stack, base)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, base, finance)

        # The review step refuses a bad amount next to the field and keeps the form.
        page.goto(f"{base}/admin/payments/{ids['payment']}")
        page.get_by_label(re.compile("Amount in USD")).fill("abc")
        page.get_by_label("Internal note").fill("customer called")
        page.get_by_role("button", name="Review refund…").click()
        assert "expected a number" in page.locator("#amount-error").inner_text()
        assert page.get_by_label(re.compile("Amount in USD")).input_value() == "abc"
        assert page.get_by_label("Internal note").input_value() == "customer called"
        page.get_by_label(re.compile("Amount in USD")).fill("25.00")
        page.get_by_role("button", name="Review refund…").click()
        assert "19.99 USD" in page.locator("#amount-error").inner_text()
        shot(page, "refund-review-error")
        page.get_by_label(re.compile("Amount in USD")).fill("19.99")
        page.get_by_role("button", name="Review refund…").click()
        page.get_by_role("button", name="Refund").click()
        assert page.locator("#amount-refunded").inner_text() == "19.99 USD"
        assert "fully refunded" in page.locator("#refund-blocked").inner_text()
        assert page.locator("#refund-form").count() == 0

        # Capture an authorised payment.
        page.goto(f"{base}/admin/payments/{ids['authorised']}")
        page.get_by_role("button", name="Capture…").click()
        page.get_by_role("button", name="Capture").click()
        assert page.locator("#flash").inner_text() == "Payment captured."
        assert page.locator("#capture-form").count() == 0

        # Cancel at period end, then resume: the page offers what makes sense next.
        page.goto(f"{base}/admin/subscriptions/{ids['subscription']}")
        page.get_by_label("At period end").check()
        page.get_by_role("button", name="Cancel subscription…").click()
        page.get_by_role("button", name="Cancel subscription").click()
        assert "cancels at the end of its period" in page.locator("#flash").inner_text()
        assert page.locator("#cancel-form").count() == 0
        page.get_by_role("button", name="Resume…").click()
        page.get_by_role("button", name="Resume").click()
        assert "resumed" in page.locator("#flash").inner_text()
        assert page.locator("#sub-cancel-at-period-end").inner_text() == "no"

        # The customer page, reached from the subscription.
        page.get_by_role("link", name="ada@example.com").click()
        assert page.locator("#customer-email").inner_text() == "ada@example.com"
        assert ids["payment"] in page.locator("#customer-payments").inner_text()
        assert ids["subscription"] in page.locator("#customer-subscriptions").inner_text()
        assert ids["payment"] in page.locator("#customer-refunds").inner_text()
        shot(page, "customer")
        page.get_by_role("link", name="Refunds").first.click()
        assert ids["payment"] in page.locator("table").inner_text()
        shot(page, "refunds")
        context.close()

        # A phone: none of these pages scrolls sideways.
        # (Another admin: finance's TOTP code of this step was used already.)
        viewer = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
        phone = browser.new_context(viewport={"width": 390, "height": 844})
        page = phone.new_page()
        sign_in(page, base, viewer)
        for path in (
            "/admin/payments",
            f"/admin/payments/{ids['payment']}",
            f"/admin/payments/{ids['authorised']}",
            f"/admin/subscriptions/{ids['subscription']}",
            "/admin/subscriptions",
            "/admin/customers",
            f"/admin/customers/{ids['customer']}",
            "/admin/refunds",
            "/admin/disputes",
            "/admin/events",
        ):
            page.goto(base + path)
            no_sideways_scroll(page)
        shot(page, "events-390")
        phone.close()


def test_create_payment_and_pay_link_in_a_browser(browser: Any, stack: Stack) -> None:
    finance = make_admin(stack.sessions, stack.settings, "finance")
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        ids = seed(stack, base)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, base, finance)

        # The customer page: a bad amount comes back next to its field, then a payment.
        page.goto(f"{base}/admin/customers/{ids['customer']}")
        form = page.locator("#create-payment-form")
        form.get_by_label("Amount").fill("abc")
        form.get_by_label("Currency").select_option("eur")
        form.get_by_label(re.compile("Description")).fill("Onboarding call")
        form.get_by_role("button", name="Review payment…").click()
        assert "expected a number" in page.locator("#pay-amount-error").inner_text()
        form = page.locator("#create-payment-form")
        assert form.get_by_label("Currency").input_value() == "eur"
        assert form.get_by_label(re.compile("Description")).input_value() == "Onboarding call"
        form.get_by_label("Amount").fill("25.00")
        form.get_by_role("button", name="Review payment…").click()
        assert "25.00 EUR" in page.locator(".confirm").inner_text()
        page.get_by_role("button", name="Create payment").click()
        assert "Payment created" in page.locator("#flash").inner_text()
        assert "requires_payment_method" in page.locator(".facts").inner_text()

        # Its page offers a pay link, shown once in a copyable field.
        page.get_by_role("button", name="Create pay link").click()
        url = page.locator("#pay-link-url").input_value()
        assert url.startswith(f"{base}/portal/session/"), url
        assert "Expires" in page.locator("#pay-link-expires").inner_text()
        shot(page, "pay-link")
        payment_url = page.url
        context.close()

        # A phone: the customer page with its forms and the pay link page fit.
        other = make_admin(stack.sessions, stack.settings, "finance", email="f2@paydesk.test")
        phone = browser.new_context(viewport={"width": 390, "height": 844})
        page = phone.new_page()
        sign_in(page, base, other)
        page.goto(f"{base}/admin/customers/{ids['customer']}")
        assert page.locator("#create-payment-form").count() == 1
        no_sideways_scroll(page)
        shot(page, "customer-forms-390")
        payment = payment_url.split("/admin/payments/", 1)[1].split("/", 1)[0]
        page.goto(f"{base}/admin/payments/{payment}")
        page.get_by_role("button", name="Create pay link").click()
        assert page.locator("#pay-link-url").input_value().startswith(f"{base}/portal/session/")
        no_sideways_scroll(page)
        shot(page, "pay-link-390")
        phone.close()
