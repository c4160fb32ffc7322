"""Promotion codes in the portal: the plans page's field, the checkout preview and
subscribing with a code, over HTTP and in Debian's chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from paydesk.db.models import Invoice
from tests.web.portal.conftest import Portal
from tests.web.portal.test_portal_browser import (
    browser,
    open_portal,
    shot,
    subscription_of,
    type_card,
)
from tests.web.portal.test_portal_sessions import csrf_of

__all__ = ["browser"]  # the fixture, imported for the browser test


def promo(portal: Portal, code: str, coupon: dict[str, Any], **extra: Any) -> str:
    sdk = portal.stack.sdk
    created = sdk.v1.coupons.create(coupon)  # type: ignore[arg-type]
    params: dict[str, Any] = {"promotion": {"type": "coupon", "coupon": created.id}, "code": code}
    return str(sdk.v1.promotion_codes.create({**params, **extra}).id)  # type: ignore[arg-type]


def first_invoice(portal: Portal, user: str) -> Invoice:
    row = subscription_of(portal, user)
    assert row is not None
    with portal.stack.sessions() as session:
        return session.scalars(
            select(Invoice).where(Invoice.stripe_id == row.latest_invoice_id)
        ).one()


def field_error(html: str) -> str:
    match = re.search(r'id="promotion-code-errors"[^>]*>([^<]*)<', html)
    assert match, "no promotion code error element"
    return match.group(1)


def test_plans_and_checkout_preview_the_code(portal: Portal) -> None:
    promo(portal, "SPRING25", {"percent_off": 25, "duration": "once"})
    client = portal.open("pat")
    plain = client.get("/portal/plans")
    assert 'id="promotion-code"' in plain.text
    assert field_error(plain.text) == ""
    applied = client.get("/portal/plans", params={"promotion_code": "spring25"})
    assert applied.status_code == 200
    assert "SPRING25: 25% off the first invoice" in applied.text
    assert "7.49 USD" in applied.text  # premium 9.99 less 2.50
    assert "22.49 USD" in applied.text  # enterprise 29.99 less 7.50
    assert "/portal/checkout/premium?promotion_code=SPRING25" in applied.text
    checkout = client.get("/portal/checkout/premium", params={"promotion_code": "SPRING25"})
    assert re.search(r"<strong>7.49 USD</strong> today with SPRING25", checkout.text)
    for bad in ("NOPE", "A" * 10_000, "x\x00y", "<script>"):
        refused = client.get("/portal/plans", params={"promotion_code": bad})
        assert refused.status_code == 200
        assert "is not valid" in field_error(refused.text)
        assert "<script>" not in refused.text
        page = client.get("/portal/checkout/premium", params={"promotion_code": bad})
        assert page.status_code == 200
        assert "is not valid" in field_error(page.text)


def test_subscribe_with_a_code_and_refusals_name_the_field(portal: Portal) -> None:
    promo(portal, "FIVEOFF", {"amount_off": 500, "currency": "usd", "duration": "forever"})
    client = portal.open("pam")
    headers = {"X-CSRF-Token": csrf_of(client)}
    for bad in ("NOPE", "A" * 10_000, "x\x00y", "SPRING 25"):
        response = client.post(
            "/portal/api/subscribe",
            json={"tier": "premium", "payment_method": "pm_card_visa", "promotion_code": bad},
            headers=headers,
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["field"], error["code"]) == ("promotion_code", "promotion_code_invalid")
    assert subscription_of(portal, "pam") is None
    assert portal.stack.sdk.v1.subscriptions.list({"limit": 10}).data == []
    done = client.post(
        "/portal/api/subscribe",
        json={"tier": "premium", "payment_method": "pm_card_visa", "promotion_code": "fiveoff"},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"status": "active"}
    invoice = first_invoice(portal, "pam")
    assert (invoice.amount_due, invoice.amount_paid) == (499, 499)


def test_blank_code_is_no_code(portal: Portal) -> None:
    client = portal.open("pab")
    response = client.post(
        "/portal/api/subscribe",
        json={"tier": "premium", "payment_method": "pm_card_visa", "promotion_code": "  "},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert response.status_code == 200, response.text
    assert first_invoice(portal, "pab").amount_paid == 999


@pytest.mark.usefixtures("browser")
def test_browser_subscribes_with_a_code(browser: Any, portal: Portal) -> None:
    promo(portal, "SPRING25", {"percent_off": 25, "duration": "once"})
    context, page, watch = open_portal(browser, portal, "pip")
    page.get_by_role("link", name="Plans", exact=True).click()
    page.get_by_label("Promotion code").fill("NOPE")
    page.get_by_role("button", name="Apply").click()
    page.locator("#promotion-code-errors").filter(has_text="is not valid").wait_for()
    page.get_by_label("Promotion code").fill("spring25")
    page.get_by_role("button", name="Apply").click()
    page.locator("#promotion-applied").filter(has_text="25% off").wait_for()
    assert "7.49 USD" in page.locator("#plan-premium").inner_text()
    shot(page, "plans-promotion")
    page.get_by_role("link", name="Subscribe to CloudToLocalLLM Premium").click()
    assert "7.49 USD today with SPRING25" in page.locator("#price-preview").inner_text()
    # A code refused on subscribe is shown next to its field; nothing is created.
    page.get_by_label("Promotion code").fill("BOGUS")
    type_card(page, "4242424242424242")
    page.get_by_role("button", name="Subscribe").click()
    page.locator("#promotion-code-errors").filter(has_text="BOGUS is not valid").wait_for()
    assert subscription_of(portal, "pip") is None
    shot(page, "checkout-promotion-error")
    page.get_by_label("Promotion code").fill("SPRING25")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(re.compile(r".*/portal/\?done=subscribed$"))
    assert page.locator("#sub-status").inner_text() == "active"
    invoice = first_invoice(portal, "pip")
    assert (invoice.amount_due, invoice.amount_paid) == (749, 749)
    watch.assert_no_card_number()
    context.close()


def test_repeating_and_forever_codes_are_described(portal: Portal) -> None:
    promo(
        portal, "THREEMONTHS", {"percent_off": 10, "duration": "repeating", "duration_in_months": 3}
    )
    promo(portal, "ALWAYS", {"amount_off": 100, "currency": "usd", "duration": "forever"})
    client = portal.open("pad")
    repeating = client.get("/portal/plans", params={"promotion_code": "THREEMONTHS"}).text
    assert "THREEMONTHS: 10% off for 3 months" in repeating
    assert "8.99 USD" in repeating  # 9.99 less 1.00 (0.999 rounded half up)
    forever = client.get("/portal/checkout/enterprise", params={"promotion_code": "ALWAYS"}).text
    assert "ALWAYS: 1.00 USD off every invoice" in forever
    assert re.search(
        r"<strong>28.99 USD</strong> today with ALWAYS.*then 28.99 USD per month", forever
    )


def test_retrying_an_unpaid_first_attempt_keeps_its_code(portal: Portal) -> None:
    """The retry after a failed 3-D Secure sends the code again; the attempt already
    redeemed it (its only redemption), so it is not looked at again."""
    promo(portal, "ONCEONLY", {"percent_off": 25}, max_redemptions=1)
    client = portal.open("par")
    headers = {"X-CSRF-Token": csrf_of(client)}
    body = {"tier": "premium", "promotion_code": "ONCEONLY"}
    first = client.post(
        "/portal/api/subscribe",
        json={**body, "payment_method": "pm_card_authenticationRequired"},
        headers=headers,
    )
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "requires_action"
    retry = client.post(
        "/portal/api/subscribe", json={**body, "payment_method": "pm_card_visa"}, headers=headers
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "confirm"
    assert first_invoice(portal, "par").amount_due == 749
    # Another plan is a new subscription: the used-up code is refused, nothing changes.
    other = client.post(
        "/portal/api/subscribe",
        json={"tier": "enterprise", "promotion_code": "ONCEONLY", "payment_method": "pm_card_visa"},
        headers=headers,
    )
    assert other.status_code == 422, other.text
    assert other.json()["error"]["field"] == "promotion_code"
    row = subscription_of(portal, "par")
    assert row is not None
    assert (row.tier, row.status) == ("premium", "incomplete")
