"""Sign-in back-off per account and address: the lockout attacks of issue 14, finding 6.

Before, 5 wrong passwords from anywhere locked the account for everyone (the owner
included) for 15 minutes, again and again. Now the attacker's address waits, with a
wait that doubles up to the cap, and the owner signs in from their own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paydesk.auth import accounts, lockout, tokens
from paydesk.auth import sessions as admin_sessions
from paydesk.db.models import AuditEntry
from paydesk.db.models.base import utcnow
from paydesk.errors import AuthenticationRequired, RateLimited
from paydesk.settings import Settings
from paydesk.web import create_app
from tests.support.admins import PASSWORD, make_admin, make_token
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack

pytestmark = pytest.mark.postgres

ATTACKER = "203.0.113.9"
OWNER = "198.51.100.1"
CSRF_MARK = 'name="csrf_token" value="'


def _password(
    session: Session,
    settings: Settings,
    email: str,
    password: str,
    ip: str,
    now: datetime | None = None,
) -> int:
    try:
        return accounts.check_password(
            session, settings, email, password, source_address=ip, now=now
        ).id
    finally:
        session.commit()


def _wrong_passwords(session: Session, settings: Settings, email: str, ip: str, n: int) -> None:
    for attempt in range(n):
        with pytest.raises((AuthenticationRequired, RateLimited)):
            _password(session, settings, email, f"wrong password {attempt}", ip)


def test_an_attacker_elsewhere_cannot_lock_the_owner_out(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "admin")
    with sessions() as session:
        _wrong_passwords(session, settings, admin.email, ATTACKER, settings.admin_max_failed_logins)
        # The attacker's address now waits, even with the right password...
        with pytest.raises(RateLimited) as waiting:
            _password(session, settings, admin.email, PASSWORD, ATTACKER)
        assert waiting.value.code == "sign_in_backing_off"
        assert 0 < waiting.value.details["retry_after_seconds"] <= 2**lockout.FIRST_EXPONENT
        # ...while the owner, from their own address, signs in.
        assert _password(session, settings, admin.email, PASSWORD, OWNER) == admin.user_id
        # Repeating the attack changes nothing for the owner.
        _wrong_passwords(session, settings, admin.email, ATTACKER, 10)
        assert _password(session, settings, admin.email, PASSWORD, OWNER) == admin.user_id


def test_the_wait_doubles_with_each_failure_up_to_the_cap(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "support")
    limit = settings.admin_max_failed_logins
    cap = settings.admin_lockout_minutes * 60
    with sessions() as session:
        _wrong_passwords(session, settings, admin.email, ATTACKER, limit)
        waits = []
        for attempt in range(7):
            count, latest = lockout.failures(session, admin.email, ATTACKER, now=utcnow())
            assert count == limit + attempt
            assert latest is not None
            wait = lockout.backing_off(session, settings, admin.email, ATTACKER, now=latest)
            waits.append(wait)
            # Hammering during the wait is refused without counting or extending it.
            for _ in range(3):
                with pytest.raises(RateLimited):
                    _password(session, settings, admin.email, PASSWORD, ATTACKER, now=latest)
            assert lockout.failures(session, admin.email, ATTACKER, now=utcnow())[0] == count
            # Once the wait is over, one more try is allowed (a wrong one here).
            after = latest + timedelta(seconds=wait)
            with pytest.raises(AuthenticationRequired):
                _password(session, settings, admin.email, "still wrong!!", ATTACKER, now=after)
        assert waits == [32, 64, 128, 256, 512, cap, cap]
        # After the wait, the right password works and the pair starts afresh.
        later = utcnow() + timedelta(seconds=cap)
        assert _password(session, settings, admin.email, PASSWORD, ATTACKER, now=later) == (
            admin.user_id
        )
        accounts.signed_in(
            session,
            settings,
            accounts.get_admin(session, admin.user_id),
            method="x",
            source=ATTACKER,
        )
        session.commit()
        assert lockout.failures(session, admin.email, ATTACKER, now=utcnow())[0] == 0


def test_unknown_emails_back_off_alike_so_the_wait_reveals_no_account(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "viewer", two_factor=False)
    refusals = []
    with sessions() as session:
        for email in (admin.email, "nobody@paydesk.test"):
            _wrong_passwords(session, settings, email, ATTACKER, settings.admin_max_failed_logins)
            with pytest.raises(RateLimited) as refused:
                _password(session, settings, email, PASSWORD, ATTACKER)
            refusals.append((refused.value.code, refused.value.message.split(";")[0]))
    assert refusals[0] == refusals[1]


def test_wrong_codes_back_off_and_never_revoke_tokens_or_sessions(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "admin")
    token = make_token(sessions, settings, admin)
    wrong = "000000" if admin.code() != "000000" else "111111"
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)

        def start(stage: str, ip: str) -> str:
            raw = admin_sessions.start(
                session, settings, user, stage=stage, source_address=ip, user_agent=None
            )
            session.commit()
            return raw

        owners_session = start("full", OWNER)
        owners_pending = start("password", OWNER)
        guessers_pending = start("password", ATTACKER)
        for _ in range(settings.admin_max_failed_logins):
            with pytest.raises(AuthenticationRequired):
                accounts.check_second_factor(
                    session, settings, user, code=wrong, recovery_code="", source_address=ATTACKER
                )
            session.commit()
        # A right code from the guesser's address waits too.
        with pytest.raises(RateLimited):
            accounts.check_second_factor(
                session,
                settings,
                user,
                code=admin.code(),
                recovery_code="",
                source_address=ATTACKER,
            )
        session.commit()
        assert admin_sessions.load(session, settings, guessers_pending) is None
        # Nothing of the owner's ends: signed-in session, half-finished sign-in, token.
        assert admin_sessions.load(session, settings, owners_session) is not None
        assert admin_sessions.load(session, settings, owners_pending) is not None
        assert tokens.authenticate(session, settings, token).user_id == admin.user_id
        assert not accounts.locked(user)
        assert accounts.check_second_factor(
            session, settings, user, code=admin.code(), recovery_code="", source_address=OWNER
        ) in ("totp",)
        session.commit()
        reasons = session.scalars(
            select(AuditEntry.after).where(
                AuditEntry.action == "auth.sign_in",
                AuditEntry.outcome == "failure",
                AuditEntry.source_address == ATTACKER,
            )
        ).all()
        assert reasons.count('{"reason":"wrong_code"}') == settings.admin_max_failed_logins
        assert reasons.count('{"reason":"backing_off"}') == 1


def _login(client: httpx.Client, email: str, password: str, ip: str) -> httpx.Response:
    token = client.get("/admin/login").text.split(CSRF_MARK)[1].split('"')[0]
    return client.post(
        "/admin/login",
        data={"csrf_token": token, "email": email, "password": password},
        # The test server is uvicorn with its defaults: X-Forwarded-For from 127.0.0.1
        # is believed, which stands in for the ingress here.
        headers={"X-Forwarded-For": ip},
    )


def test_console_attacker_gets_429_with_retry_after_and_owner_signs_in(stack: Stack) -> None:
    admin = make_admin(stack.sessions, stack.settings, "admin")
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        with httpx.Client(base_url=base, timeout=60) as attacker:
            statuses = [
                _login(attacker, admin.email, f"guess {n}", ATTACKER).status_code
                for n in range(stack.settings.admin_max_failed_logins + 2)
            ]
            refused = _login(attacker, admin.email, PASSWORD, ATTACKER)
        assert statuses == [401] * stack.settings.admin_max_failed_logins + [429, 429]
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 2**lockout.FIRST_EXPONENT
        assert "retry in" in refused.text
        with httpx.Client(base_url=base, timeout=60) as owner:
            signed = _login(owner, admin.email, PASSWORD, OWNER)
        assert signed.status_code == 303
        assert signed.headers["location"] == "/admin/2fa"
