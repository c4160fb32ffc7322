"""Portal links and sessions over real HTTP: single use, expiry, scope, CSRF, CSP, hostile input."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from paydesk.db.models import Invoice, Payment, PortalSession
from paydesk.db.models.base import utcnow
from tests.support.stack import TEST_PUBLISHABLE_KEY
from tests.support.waiting import poll
from tests.web.portal.conftest import RETURN_ORIGIN, Portal, app_token

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: httpx.Client) -> str:
    match = CSRF.search(client.get("/portal/").text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def subscribe(client: httpx.Client, tier: str = "premium", card: str = "pm_card_visa") -> dict:
    response = client.post(
        "/portal/api/subscribe",
        json={"tier": tier, "payment_method": card},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_link_opens_once_and_starts_a_scoped_session(portal: Portal) -> None:
    link = portal.link("ada", return_url=f"{RETURN_ORIGIN}/settings/billing")
    assert link.startswith(f"{portal.base}/portal/session/")
    with httpx.Client(timeout=30) as browser:
        opened = browser.get(link)
        assert opened.status_code == 303
        assert opened.headers["location"] == "/portal/"
        cookie = opened.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/portal" in cookie
        page = browser.get(f"{portal.base}/portal/")
        assert page.status_code == 200
        assert "You have no subscription yet" in page.text
        csp = page.headers["content-security-policy"]
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert f"script-src 'self' {portal.stack.sandbox.url}" in csp
        assert f"frame-src {portal.stack.sandbox.url}" in csp
        assert page.headers["cache-control"] == "no-store"
        assert "Back to the app" in page.text
    # Used: a second opening (another browser, or the same link replayed) is refused.
    with httpx.Client(timeout=30) as other:
        again = other.get(link)
        assert again.status_code == 404
        assert "expired or was already used" in again.text
        assert other.get(f"{portal.base}/portal/").status_code == 401
    with portal.stack.sessions() as session:
        row = session.scalars(select(PortalSession)).one()
        token = link.rsplit("/", 1)[1]
        assert token not in (row.link_digest, row.session_digest)  # digests only


def test_expired_link_and_idle_session_are_refused(portal: Portal) -> None:
    link = portal.link("bob")
    with portal.stack.sessions() as session:
        session.execute(
            update(PortalSession).values(link_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert httpx.get(link, timeout=30).status_code == 404

    client = portal.open("bob")
    assert client.get("/portal/").status_code == 200
    with portal.stack.sessions() as session:
        session.execute(
            update(PortalSession)
            .where(PortalSession.opened_at.is_not(None))
            .values(last_seen_at=utcnow() - timedelta(minutes=16))
        )
        session.commit()
    ended = client.get("/portal/")
    assert ended.status_code == 401
    assert "session has ended" in ended.text


def test_portal_session_api_refusals(portal: Portal) -> None:
    url = f"{portal.base}/api/billing/portal-sessions"
    assert httpx.post(url, json={}, timeout=30).status_code == 401
    auth = {"Authorization": f"Bearer {app_token('cyd')}"}
    for bad in (
        "https://evil.example/x",
        "javascript:alert(1)",
        "https://app.example@evil.example/",
    ):
        refused = httpx.post(url, json={"return_url": bad}, headers=auth, timeout=30)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] in ("return_url_not_allowed", "invalid_input")
    huge = httpx.post(url, json={"return_url": "https://app.example/" + "a" * 5000}, headers=auth)
    assert huge.status_code == 422
    extra = httpx.post(url, json={"customer": "cus_someone_else"}, headers=auth, timeout=30)
    assert extra.status_code == 422
    not_json = httpx.post(url, content=b"\x00\xff{", headers=auth, timeout=30)
    assert not_json.status_code in (400, 422)


def test_another_customers_invoice_is_not_found_and_nothing_leaks(portal: Portal) -> None:
    owner = portal.open("dee")
    assert subscribe(owner) == {"status": "active"}

    def mirrored() -> tuple[str, str] | None:
        # The payment is mirrored when its webhook lands (the worker applies it).
        with portal.stack.sessions() as session:
            invoice = session.scalars(select(Invoice)).first()
            payment = session.scalars(select(Payment)).first()
            return (invoice.stripe_id, payment.stripe_id) if invoice and payment else None

    invoice_id, payment_id = poll(mirrored, timeout=60)
    assert owner.get(f"/portal/invoices/{invoice_id}").status_code == 200
    assert owner.get(f"/portal/payments/{payment_id}").status_code == 200

    stranger = portal.open("eve")
    for path in (
        f"/portal/invoices/{invoice_id}",
        f"/portal/payments/{payment_id}",
        f"/portal/pay/{invoice_id}",
        f"/portal/pay/{payment_id}",
    ):
        refused = stranger.get(path)
        assert refused.status_code == 404, path
        assert "9.99" not in refused.text
        assert "dee@" not in refused.text
    token = csrf_of(stranger)
    for path in (f"/portal/api/pay/{invoice_id}", f"/portal/api/pay/{payment_id}/refresh"):
        refused = stranger.post(path, headers={"X-CSRF-Token": token})
        assert refused.status_code == 404, path
        assert refused.json()["error"]["code"] in ("invoice_not_found", "payment_not_found")
    assert "9.99" not in stranger.get("/portal/invoices").text


def test_every_form_and_call_needs_the_sessions_csrf_token(portal: Portal) -> None:
    client = portal.open("fay")
    other = portal.open("gus")
    foreign = csrf_of(other)
    for path in ("/portal/cancel", "/portal/resume", "/portal/tier/preview", "/portal/tier"):
        for data in ({}, {"csrf_token": "x" * 64}, {"csrf_token": foreign}):
            refused = client.post(path, data={**data, "tier": "enterprise"})
            assert refused.status_code == 403, (path, data)
            assert "did not come from this page" in refused.text
    for path in ("/portal/api/subscribe", "/portal/api/setup-intent", "/portal/api/card"):
        refused = client.post(path, json={}, headers={"X-CSRF-Token": foreign})
        assert refused.status_code == 403, path
        assert refused.json()["error"]["code"] == "csrf_failed"
    # Anonymous: nothing but "your session has ended".
    with httpx.Client(base_url=portal.base, timeout=30) as anonymous:
        for path in ("/portal/", "/portal/plans", "/portal/card", "/portal/invoices"):
            assert anonymous.get(path).status_code == 401
        assert anonymous.post("/portal/api/subscribe", json={}).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/portal/invoices/in_%00",
        "/portal/pay/%27%3B%20drop%20table%20invoices%3B--",
        "/portal/checkout/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/portal/payments/" + "pi_" + "9" * 5000,
        "/portal/pay/in_" + "\u00e9" * 300,
        "/portal/session/" + "A" * 5000,
        "/portal/session/%00",
    ],
)
def test_poison_paths_are_4xx_never_5xx(portal: Portal, path: str) -> None:
    client = portal.open("hal")
    response = client.get(path)
    assert 400 <= response.status_code < 500, response.text
    assert "<script>alert(1)" not in response.text


def test_hostile_bodies_are_refused(portal: Portal) -> None:
    client = portal.open("ivy")
    token = csrf_of(client)
    headers = {"X-CSRF-Token": token}
    big = client.post(
        "/portal/api/subscribe",
        content=b'{"tier": "premium", "payment_method": "' + b"a" * 100_000 + b'"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    # Over the 64 KiB default cap on request bodies: refused before it is read.
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "payload_too_large"
    long_id = client.post(
        "/portal/api/subscribe",
        json={"tier": "premium", "payment_method": "pm_" + "a" * 10_000},
        headers=headers,
    )
    assert long_id.status_code == 422
    for body in (
        {"tier": "premium", "payment_method": "pm_card_visa'; --"},
        {"tier": "premium", "payment_method": "card_4242424242424242"},
        {"tier": "platinum", "payment_method": "pm_card_visa"},
        {"tier": ["premium"], "payment_method": None},
    ):
        refused = client.post("/portal/api/subscribe", json=body, headers=headers)
        assert refused.status_code == 422, (body, refused.text)
    assert (
        client.post("/portal/api/card", json={"intent": "pi_x"}, headers=headers).status_code == 422
    )


def test_the_sandbox_takes_a_publishable_key_only_where_stripe_js_may(portal: Portal) -> None:
    sandbox = portal.stack.sandbox.url
    auth = {"Authorization": f"Bearer {TEST_PUBLISHABLE_KEY}"}
    refused = httpx.get(f"{sandbox}/v1/customers", headers=auth)
    assert refused.status_code == 401
    assert "cannot be made with a publishable API key" in refused.json()["error"]["message"]
    assert httpx.post(f"{sandbox}/v1/refunds", headers=auth).status_code == 401
    created = httpx.post(
        f"{sandbox}/v1/payment_methods",
        headers=auth,
        data={
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "2040",
            "card[cvc]": "123",
        },
    )
    assert created.status_code == 200, created.text
    assert created.json()["card"]["last4"] == "4242"
    intent = portal.stack.sdk.v1.payment_intents.create({"amount": 500, "currency": "usd"})
    wrong = httpx.get(f"{sandbox}/v1/payment_intents/{intent.id}", headers=auth)
    assert wrong.status_code == 400
    right = httpx.get(
        f"{sandbox}/v1/payment_intents/{intent.id}",
        headers=auth,
        params={"client_secret": intent.client_secret},
    )
    assert right.status_code == 200
    assert right.json()["id"] == intent.id


def test_admin_pay_link_is_scoped_to_one_payment(portal: Portal) -> None:
    from tests.web.portal.conftest import admin_api, payment_needing_action

    payment_id = payment_needing_action(portal, "kim")
    viewer = admin_api(portal, "viewer")
    assert viewer.post(f"/api/admin/payments/{payment_id}/pay-link").status_code == 403
    support = admin_api(portal, "support")
    assert support.post("/api/admin/payments/pi_missing/pay-link").status_code == 404
    assert support.post("/api/admin/payments/in_missing/pay-link").status_code == 404
    made = support.post(f"/api/admin/payments/{payment_id}/pay-link")
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["target"] == payment_id
    assert link["url"].startswith(f"{portal.base}/portal/session/")
    with httpx.Client(timeout=30, base_url=portal.base) as customer:
        opened = customer.get(link["url"])
        assert opened.status_code == 303
        assert opened.headers["location"] == f"/portal/pay/{payment_id}"
        page = customer.get(f"/portal/pay/{payment_id}")
        assert page.status_code == 200
        assert "42.00 USD" in page.text
        # Scoped: nothing else of the portal, not even this customer's other pages.
        for path in ("/portal/", "/portal/plans", "/portal/invoices", "/portal/card"):
            assert customer.get(path).status_code == 404, path
        assert customer.get("/portal/pay/pi_other").status_code == 404
    # Single use.
    assert httpx.get(link["url"], timeout=30).status_code == 404
    audit = admin_api(portal, "admin").get(
        "/api/admin/audit", params={"action": "payment.pay_link"}
    )
    assert payment_id in audit.text


def test_an_unpaid_first_attempt_is_retried_or_replaced_by_another_plan(portal: Portal) -> None:
    client = portal.open("lou")
    token = csrf_of(client)
    first = client.post(
        "/portal/api/subscribe",
        json={"tier": "premium", "payment_method": "pm_card_authenticationRequired"},
        headers={"X-CSRF-Token": token},
    )
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "requires_action"
    assert "Finish paying" in client.get("/portal/").text
    # The customer gives up on 3-D Secure and picks Enterprise with another card.
    assert subscribe(client, "enterprise", "pm_card_visa") == {"status": "active"}
    page = client.get("/portal/").text
    assert "CloudToLocalLLM Enterprise" in page
    canceled = portal.stack.sdk.v1.subscriptions.list({"status": "all"})
    statuses = sorted(sub.status for sub in canceled.data)
    assert statuses == ["active", "canceled"] or statuses == ["active", "incomplete_expired"]


@pytest.mark.parametrize(
    "target",
    ["pi_%00", "in_'%3B--", "x" * 3000, "%F0%9F%92%B3", "in_" + "9" * 300, "..%2F..%2Fadmin"],
)
def test_admin_pay_link_poison_ids_are_4xx(portal: Portal, target: str) -> None:
    from tests.web.portal.conftest import admin_api

    support = admin_api(portal, "support")
    response = support.post(f"/api/admin/payments/{target}/pay-link")
    assert 400 <= response.status_code < 500, response.text
    anonymous = httpx.post(f"{portal.base}/api/admin/payments/{target}/pay-link")
    assert anonymous.status_code in (401, 404)  # 404: a decoded "/" matches no route
