"""A renewal that needs 3-D Secure: the worker records a pay-link email, a real SMTP
server (aiosmtpd, started here) receives it, and following its link in the browser and
completing the challenge makes the subscription active again."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from paydesk.db.models import EmailOutbox
from tests.support.servers import free_port
from tests.support.stack import Stack
from tests.support.waiting import poll
from tests.web.portal.conftest import Portal, running_portal
from tests.web.portal.test_portal_browser import (
    Watch,
    browser,  # noqa: F401 - the module's browser fixture
    challenge,
    open_portal,
    subscription_of,
    type_card,
)

LINK = re.compile(r"http://127\.0\.0\.1:\d+/portal/session/[A-Za-z0-9_-]+")


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    received = Inbox()
    port = free_port()
    server = Controller(received, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield received, port
    finally:
        server.stop()


@pytest.fixture
def mailing_portal(stack: Stack, inbox: tuple[Inbox, int]) -> Iterator[Portal]:
    env = {
        "PAYDESK_SMTP_URL": f"smtp://127.0.0.1:{inbox[1]}",
        "PAYDESK_MAIL_FROM": "billing@paydesk.example",
    }
    with running_portal(stack, env) as running:
        yield running


def parts(message: Message) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_subtype()] = payload.decode()
    return found


def test_renewal_needing_authentication_emails_a_pay_link(
    browser: Any,  # noqa: F811
    mailing_portal: Portal,
    inbox: tuple[Inbox, int],
) -> None:
    portal = mailing_portal
    received, _port = inbox
    context, page, _watch = open_portal(browser, portal, "val")
    page.goto(f"{portal.base}/portal/checkout/premium")
    type_card(page, "4000002760003184")
    page.get_by_role("button", name="Subscribe").click()
    challenge(page, "Complete authentication")
    page.wait_for_url(re.compile(r".*/portal/\?done=subscribed$"))
    context.close()

    # A month later the renewal is charged off-session: the card asks for 3-D Secure.
    httpx.post(f"{portal.stack.sandbox.url}/_sandbox/clock", data={"advance": 32 * 86_400})
    poll(lambda: received.messages, timeout=120, what="the pay-link email")
    message = received.messages[0]
    assert message["To"] == "val@example.com"
    assert message["From"] == "billing@paydesk.example"
    assert message["Subject"] == "Action needed: your payment of 9.99 USD"
    bodies = parts(message)
    assert set(bodies) == {"plain", "html"}
    link = LINK.search(bodies["plain"])
    assert link is not None
    assert link.group(0) in bodies["html"]
    row = poll(
        lambda: (sub := subscription_of(portal, "val")) and sub.status != "active" and sub,
        timeout=60,
        what="the renewal's failure in the mirror",
    )
    assert row.status == "past_due"

    # Only one email for that attempt, though two events (action required, failed) came.
    with portal.stack.sessions() as session:
        sent = session.scalars(select(EmailOutbox)).all()
        assert [email.status for email in sent] == ["sent"]
        assert link.group(0).rsplit("/", 1)[1] not in sent[0].dedupe_key

    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    watch = Watch(page, portal.base)
    page.goto(link.group(0))
    page.wait_for_url(re.compile(r".*/portal/pay/in_[A-Za-z0-9]+$"))
    type_card(page, "4000002760003184")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    challenge(page, "Complete authentication")
    page.locator("#paid").wait_for()
    poll(
        lambda: (sub := subscription_of(portal, "val")) and sub.status == "active",
        timeout=60,
        what="the subscription to be active again",
    )
    watch.assert_no_card_number()
    # The pay link's session sees nothing else; the portal shows both invoices paid.
    page.goto(f"{portal.base}/portal/invoices")
    assert "No such page" in page.content()
    page.goto(portal.link("val"))
    page.get_by_role("link", name="Invoices").click()
    rows = page.locator("#invoices tbody tr")

    def both_paid() -> bool:
        page.reload()
        return bool(rows.count() == 2 and rows.filter(has_text="paid").count() == 2)

    poll(both_paid, timeout=60, what="both invoices paid in the mirror")
    context.close()


def test_a_failed_send_is_kept_and_retried_later(engine: Any, inbox: tuple[Inbox, int]) -> None:
    from datetime import timedelta

    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from paydesk.db.models.base import utcnow
    from paydesk.mail.outbox import send_due
    from paydesk.settings import load_settings

    received, port = inbox
    common = {
        "PAYDESK_MAIL_FROM": "billing@paydesk.example",
        "PAYDESK_PUBLIC_URL": "https://billing.example",
    }
    down = load_settings({**common, "PAYDESK_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"})
    up = load_settings({**common, "PAYDESK_SMTP_URL": f"smtp://127.0.0.1:{port}"})
    with Session(engine) as session:
        session.add(
            EmailOutbox(
                dedupe_key="pay-link:in_test:1",
                kind="pay_link",
                to_address="wes@example.com",
                subject="Action needed",
                body_text="text",
                body_html="<p>html</p>",
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )
        session.commit()
    assert send_due(down, engine, timeout=2) == 0
    with Session(engine) as session:
        row = session.scalars(select(EmailOutbox)).one()
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error
        assert row.next_attempt_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None)
    assert send_due(up, engine) == 0  # not due yet: the backoff holds
    with Session(engine) as session:
        session.execute(update(EmailOutbox).values(next_attempt_at=utcnow() - timedelta(1)))
        session.commit()
    assert send_due(up, engine) == 1
    assert received.messages[0]["Subject"] == "Action needed"
    assert send_due(up, engine) == 0
    with Session(engine) as session:
        row = session.scalars(select(EmailOutbox)).one()
        assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
