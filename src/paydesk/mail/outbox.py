"""The email outbox: recorded in the webhook worker's transaction, sent afterwards.

``pay_link_notice`` is the worker's hook: when a renewal invoice needs the customer
(``invoice.payment_action_required``, ``invoice.payment_failed``) it stores one email
per invoice attempt, with a fresh pay link, in the same transaction that applies the
event (so a replayed or duplicated event sends nothing twice). ``OutboxSender`` sends
due emails over SMTP on its own thread and retries failures with backoff, so a slow or
unreachable mail server never holds up the worker. All of it is off unless
``PAYDESK_SMTP_URL`` is set.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from paydesk.auth import portal_sessions
from paydesk.db.engine import session_factory
from paydesk.db.models import Customer, EmailOutbox
from paydesk.db.models.base import utcnow
from paydesk.logs import get_logger
from paydesk.money import Money
from paydesk.settings import Settings

log = get_logger(__name__)
HERE = Path(__file__).parent
NOTICE_EVENTS = ("invoice.payment_action_required", "invoice.payment_failed")
# Renewals and tier changes bill the customer while they are away; a first payment
# happens on the checkout page, where the customer already sees the outcome.
NOTICE_REASONS = ("subscription_cycle", "subscription_update")
MAX_ATTEMPTS = 8
_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

Hook = Callable[[Session, str, dict[str, Any]], None]


def enabled(settings: Settings) -> bool:
    """Whether emails are configured (SMTP server, from-address and public URL)."""
    return bool(settings.smtp_url and settings.mail_from and settings.public_url)


def pay_link_notice(settings: Settings) -> Hook | None:
    """The worker's after-apply hook that records pay-link emails; None when mail is off."""
    if not enabled(settings):
        return None

    def hook(session: Session, event_type: str, event: dict[str, Any]) -> None:
        if event_type in NOTICE_EVENTS:
            invoice = (event.get("data") or {}).get("object") or {}
            enqueue_pay_link(session, settings, invoice, event_type)

    return hook


def enqueue_pay_link(
    session: Session, settings: Settings, invoice: dict[str, Any], event_type: str
) -> EmailOutbox | None:
    """Record the pay-link email for this attempt on ``invoice`` (once), with a new link."""
    invoice_id = invoice.get("id")
    customer_id = invoice.get("customer")
    if (
        not isinstance(invoice_id, str)
        or not isinstance(customer_id, str)
        or invoice.get("status") != "open"
        or invoice.get("billing_reason") not in NOTICE_REASONS
        or settings.public_url is None
    ):
        return None
    key = f"pay-link:{invoice_id}:{invoice.get('attempt_count', 0)}"[:255]
    if session.scalars(select(EmailOutbox.id).where(EmailOutbox.dedupe_key == key)).first():
        return None
    address = invoice.get("customer_email")
    if not address:
        customer = session.scalars(
            select(Customer).where(Customer.stripe_id == customer_id)
        ).one_or_none()
        address = customer.email if customer else None
    if not isinstance(address, str) or "@" not in address:
        log.info("pay_link_email_skipped", invoice=invoice_id, reason="no email address")
        return None
    link = portal_sessions.pay_link(
        session, settings, customer_id=customer_id, target=invoice_id, created_by="email"
    )
    amount = Money(
        int(invoice.get("amount_remaining") or invoice.get("amount_due") or 0),
        str(invoice.get("currency") or "usd"),
    ).format()
    # One email per attempt, whichever of the attempt's two events is applied first, so
    # one wording covers "needs authentication" and "declined".
    subject = f"Action needed: your payment of {amount}"
    context = {
        "subject": subject,
        "amount": amount,
        "product": "CloudToLocalLLM",
        "url": portal_sessions.link_url(settings.public_url, link),
        "expires": link.expires_at.astimezone(UTC).strftime("%d %b %Y %H:%M UTC"),
    }
    row = EmailOutbox(
        dedupe_key=key,
        kind="pay_link",
        to_address=address[:320],
        subject=subject,
        body_text=_env.get_template("pay_link.txt").render(**context),
        body_html=_env.get_template("pay_link.html").render(**context),
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    session.flush()
    log.info("pay_link_email_recorded", invoice=invoice_id, event_type=event_type)
    return row


def _message(settings: Settings, row: EmailOutbox) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from or ""
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Message-ID"] = make_msgid(domain=(settings.mail_from or "@paydesk").split("@")[-1])
    message.set_content(row.body_text)
    message.add_alternative(row.body_html, subtype="html")
    return message


def _send(settings: Settings, message: EmailMessage, timeout: float) -> None:
    assert settings.smtp_url is not None
    url = urlsplit(settings.smtp_url.get_secret_value())
    host = url.hostname or "localhost"
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, url.port or 465, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=timeout)
    with client:
        if url.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)


def retry_delay(attempts: int) -> timedelta:
    """Backoff after ``attempts`` failed sends: 30 s, 1 min, 2 min … at most 1 h."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def send_due(settings: Settings, engine: Engine, *, limit: int = 20, timeout: float = 20) -> int:
    """Send the emails that are due; returns how many were sent."""
    sessions = session_factory(engine)
    sent = 0
    with sessions() as session:
        due = list(
            session.scalars(
                select(EmailOutbox)
                .where(EmailOutbox.status == "pending", EmailOutbox.next_attempt_at <= utcnow())
                .order_by(EmailOutbox.id)
                .limit(limit)
            )
        )
        for row in due:
            row.attempts += 1
            try:
                _send(settings, _message(settings, row), timeout)
            except (OSError, smtplib.SMTPException) as exc:
                row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"
                else:
                    row.next_attempt_at = datetime.now(UTC) + retry_delay(row.attempts)
                log.warning(
                    "email_send_failed", email=row.id, attempts=row.attempts, error=row.last_error
                )
            else:
                row.status = "sent"
                row.sent_at = utcnow()
                row.last_error = None
                sent += 1
                log.info("email_sent", email=row.id, kind=row.kind)
            session.commit()
    return sent


class OutboxSender:
    """Sends due emails every ``every`` seconds on its own thread until stopped."""

    def __init__(self, settings: Settings, engine: Engine, *, every: float = 2.0) -> None:
        self._settings = settings
        self._engine = engine
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paydesk-outbox", daemon=True)

    def start(self) -> OutboxSender:
        """Start sending."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                send_due(self._settings, self._engine)
            except Exception as exc:  # noqa: BLE001 - the database may be down; try again later
                log.warning("email_outbox_round_failed", error_type=type(exc).__name__)
            self._stop.wait(self._every)
