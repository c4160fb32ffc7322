"""Admins, sign-in, two-factor, sessions, tokens, CSRF and the audit chain, on both databases."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from paydesk.auth import accounts, audit, roles, tokens, two_factor
from paydesk.auth import sessions as admin_sessions
from paydesk.auth.roles import Permission
from paydesk.db.models import AdminSession, AdminUser, AuditEntry
from paydesk.db.models.base import utcnow
from paydesk.errors import AuthenticationRequired, PermissionDenied, RateLimited
from paydesk.settings import Settings
from tests.support.admins import PASSWORD, make_admin, make_token

pytestmark = pytest.mark.postgres


def sign_in(session: Session, settings: Settings, email: str, password: str, ip: str) -> AdminUser:
    try:
        return accounts.check_password(session, settings, email, password, source_address=ip)
    finally:
        session.commit()


def test_passwords_are_argon2id_and_sign_in_is_audited(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "finance")
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        assert user.password_hash.startswith("$argon2id$")
        assert sign_in(session, settings, admin.email.upper(), PASSWORD, "10.0.0.1").id == user.id
        with pytest.raises(AuthenticationRequired):
            sign_in(session, settings, admin.email, "wrong password!!", "10.0.0.1")
        with pytest.raises(AuthenticationRequired):
            sign_in(session, settings, "nobody@paydesk.test", PASSWORD, "10.0.0.1")
        failures = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "auth.sign_in", AuditEntry.outcome == "failure"
            )
        ).all()
        assert [(f.actor, f.source_address) for f in failures] == [
            (admin.email, "10.0.0.1"),
            ("nobody@paydesk.test", "10.0.0.1"),
        ]


def test_lockout_after_repeated_failures(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "support")
    with sessions() as session:
        for _ in range(settings.admin_max_failed_logins):
            with pytest.raises(AuthenticationRequired):
                sign_in(session, settings, admin.email, "not the password", "10.0.0.2")
        # That address waits: even the right password is refused until the wait ends.
        with pytest.raises(RateLimited):
            sign_in(session, settings, admin.email, PASSWORD, "10.0.0.2")
        later = utcnow() + timedelta(minutes=settings.admin_lockout_minutes)
        user = accounts.check_password(
            session, settings, admin.email, PASSWORD, source_address="10.0.0.2", now=later
        )
        assert user.id == admin.user_id


def test_throttling_per_source_address(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        for n in range(accounts.ADDRESS_FAILURE_LIMIT):
            with pytest.raises(AuthenticationRequired):
                sign_in(session, settings, f"guess{n}@paydesk.test", "x" * 12, "10.9.9.9")
        with pytest.raises(RateLimited):
            sign_in(session, settings, "guess@paydesk.test", "x" * 12, "10.9.9.9")
        # Another address is not affected.
        with pytest.raises(AuthenticationRequired):
            sign_in(session, settings, "guess@paydesk.test", "x" * 12, "10.9.9.8")


def test_totp_codes_are_single_use_and_recovery_codes_once(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "admin")
    assert admin.seed is not None
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        now = time.time()
        code = pyotp.TOTP(admin.seed).at(now)
        assert two_factor.verify_totp(settings, user, code, now=now)
        assert not two_factor.verify_totp(settings, user, code, now=now)  # replayed
        assert not two_factor.verify_totp(settings, user, "000000x", now=now)
        codes = two_factor.issue_recovery_codes(session, settings, user)
        assert len(set(codes)) == two_factor.RECOVERY_CODES
        assert two_factor.use_recovery_code(session, settings, user, codes[0].upper())
        assert not two_factor.use_recovery_code(session, settings, user, codes[0])
        assert not two_factor.use_recovery_code(session, settings, user, "dead-beef-0000")


def test_sessions_idle_and_absolute_timeouts(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "viewer", two_factor=False)
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        raw = admin_sessions.start(
            session, settings, user, stage="full", source_address=None, user_agent=None
        )
        session.commit()
        start = utcnow()
        idle = timedelta(minutes=settings.admin_session_idle_minutes)
        # Used regularly: survives well past one idle period...
        for step in range(1, 5):
            at = start + (idle - timedelta(minutes=1)) * step
            assert admin_sessions.load(session, settings, raw, now=at) is not None
        # ...but not past the absolute lifetime.
        late = start + timedelta(hours=settings.admin_session_max_hours, seconds=1)
        assert admin_sessions.load(session, settings, raw, now=late) is None
        session.commit()

        raw2 = admin_sessions.start(
            session, settings, user, stage="full", source_address=None, user_agent=None
        )
        assert admin_sessions.load(session, settings, raw2, now=utcnow() + idle) is None
        assert admin_sessions.load(session, settings, "forged", now=utcnow()) is None


def test_disabling_revokes_sessions_and_tokens_at_once(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "finance")
    token = make_token(sessions, settings, admin)
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        raw = admin_sessions.start(
            session, settings, user, stage="full", source_address=None, user_agent=None
        )
        assert tokens.authenticate(session, settings, token).role == "finance"
        accounts.disable_admin(session, settings, user, actor="test")
        session.commit()
        assert admin_sessions.load(session, settings, raw) is None
        with pytest.raises(AuthenticationRequired):
            tokens.authenticate(session, settings, token)
        with pytest.raises(AuthenticationRequired):
            sign_in(session, settings, admin.email, PASSWORD, "10.0.0.4")
        revoked = session.scalars(select(AdminSession.revoked_at)).all()
        assert all(revoked)


def test_tokens_expire_are_revocable_and_bounded_by_role(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "support")
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        with pytest.raises(PermissionDenied):
            tokens.create(session, settings, user, name="x", role="admin", actor="t")
        row, raw = tokens.create(session, settings, user, name="ro", role="viewer", actor="t")
        session.commit()
        assert raw.startswith("pdk_")
        assert row.prefix == raw[:12]
        assert tokens.authenticate(session, settings, raw).role == "viewer"
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
        with pytest.raises(AuthenticationRequired):
            tokens.authenticate(session, settings, raw)
        row2, raw2 = tokens.create(session, settings, user, name="b", role="support", actor="t")
        principal = tokens.authenticate(session, settings, raw2)
        tokens.revoke(session, settings, row2.id, by=principal, may_manage_others=False)
        session.commit()
        with pytest.raises(AuthenticationRequired):
            tokens.authenticate(session, settings, raw2)


def test_money_roles_need_two_factor_for_tokens(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "finance", two_factor=False)
    token = make_token(sessions, settings, admin)
    with sessions() as session, pytest.raises(AuthenticationRequired):
        tokens.authenticate(session, settings, token)


def test_csrf_tokens(settings: Settings) -> None:
    cookie = admin_sessions.new_csrf_cookie()
    token = admin_sessions.csrf_token(settings, cookie)
    assert admin_sessions.csrf_ok(settings, cookie, token)
    # Flip the last character (to one it is not: a fixed "0" matched 1 time in 16).
    assert not admin_sessions.csrf_ok(
        settings, cookie, token[:-1] + ("1" if token[-1] == "0" else "0")
    )
    assert not admin_sessions.csrf_ok(settings, admin_sessions.new_csrf_cookie(), token)
    assert not admin_sessions.csrf_ok(settings, None, token)
    assert not admin_sessions.csrf_ok(settings, cookie, None)
    # Bound to the session: another session's token, or the unbound one, is refused.
    mine = admin_sessions.csrf_token(settings, cookie, "session-a")
    assert admin_sessions.csrf_ok(settings, cookie, mine, "session-a")
    assert not admin_sessions.csrf_ok(settings, cookie, mine, "session-b")
    assert not admin_sessions.csrf_ok(settings, cookie, mine)
    assert not admin_sessions.csrf_ok(settings, cookie, token, "session-a")


def test_live_mode_refunds_and_cancellations_need_finance() -> None:
    for permission in (Permission.REFUNDS_CREATE, Permission.SUBSCRIPTIONS_CANCEL):
        assert roles.can("support", permission, live=False)
        assert not roles.can("support", permission, live=True)
        assert roles.can("finance", permission, live=True)
        assert roles.can("admin", permission, live=True)
        assert not roles.can("viewer", permission, live=False)


def _tamper(engine: Engine, statement: str) -> None:
    # An attacker with the database owner's rights removes the append-only guard first.
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        connection.execute(text(statement))


def _fill(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        for n in range(5):
            audit.record(session, settings, actor="a@x", action="refund.create", target=f"pi_{n}")
        session.commit()
        assert audit.verify(session, settings).ok
        assert audit.verify(session, settings).checked == 5


def test_audit_log_is_append_only(
    sessions: sessionmaker[Session], settings: Settings, engine: Engine
) -> None:
    _fill(sessions, settings)
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError), engine.begin() as connection:
            connection.execute(text(statement))


@pytest.mark.parametrize(
    ("statement", "broken", "reason"),
    [
        ("UPDATE audit_log SET target = 'pi_other' WHERE id = 3", 3, "changed"),
        ("DELETE FROM audit_log WHERE id = 2", 3, "removed"),
        ("UPDATE audit_log SET after = '{}' WHERE id = 5", 5, "changed"),
    ],
)
def test_audit_chain_detects_tampering(
    sessions: sessionmaker[Session],
    settings: Settings,
    engine: Engine,
    statement: str,
    broken: int,
    reason: str,
) -> None:
    _fill(sessions, settings)
    _tamper(engine, statement)
    with sessions() as session:
        report = audit.verify(session, settings)
    assert not report.ok
    assert report.broken_at == broken
    assert reason in (report.reason or "")


def test_no_secret_is_stored_in_the_clear(
    sessions: sessionmaker[Session], settings: Settings, engine: Engine
) -> None:
    admin = make_admin(sessions, settings, "admin")
    token = make_token(sessions, settings, admin)
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        codes = two_factor.issue_recovery_codes(session, settings, user)
        raw_session = admin_sessions.start(
            session, settings, user, stage="full", source_address=None, user_agent=None
        )
        session.commit()
    dump = []
    with engine.connect() as connection:
        for table in ("admin_users", "admin_api_tokens", "admin_recovery_codes",
                      "admin_sessions", "audit_log"):  # fmt: skip
            for row in connection.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                dump.append(" ".join(str(value) for value in row))
    everything = "\n".join(dump)
    assert admin.seed is not None
    for secret in (PASSWORD, admin.seed, token, token[4:], raw_session, *codes):
        assert secret not in everything
    for code in codes:
        assert code.replace("-", "") not in everything


def test_audit_csv_neutralises_formulas(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    with sessions() as session:
        audit.record(session, settings, actor="=HYPERLINK(1)", action="auth.sign_in", target="@x")
        audit.record(session, settings, actor="ok@x", action="refund.create", after={"a": 1})
        session.commit()
        text_csv = audit.to_csv(audit.iter_all(session, audit.AuditFilter()))
    lines = text_csv.splitlines()
    assert lines[0] == ",".join(audit.CSV_COLUMNS)
    assert ",'=HYPERLINK(1),auth.sign_in,'@x," in text_csv
    assert 'ok@x,refund.create,,success,,"{""a"":1}"' in text_csv


def _second_factor(
    session: Session,
    settings: Settings,
    user: AdminUser,
    code: str,
    ip: str = "10.0.0.7",
    now: datetime | None = None,
) -> str:
    try:
        return accounts.check_second_factor(
            session, settings, user, code=code, recovery_code="", source_address=ip, now=now
        )
    finally:
        session.commit()


def test_a_correct_code_after_a_lockout_does_not_get_in(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "finance")
    assert admin.seed is not None
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        for _ in range(settings.admin_max_failed_logins):
            with pytest.raises(AuthenticationRequired):
                _second_factor(session, settings, user, "000000")
        with pytest.raises(RateLimited):
            _second_factor(session, settings, user, admin.code())
        # Once the wait has passed, the right code works again.
        later = utcnow() + timedelta(minutes=settings.admin_lockout_minutes)
        assert _second_factor(session, settings, user, admin.code(), now=later) == "totp"


def test_wrong_passwords_and_codes_share_the_count_of_an_address(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    # Guess codes through a pending session, then fail a password from the same
    # address: the pending session must end, and a right code must not get in.
    admin = make_admin(sessions, settings, "admin")
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        raw = admin_sessions.start(
            session, settings, user, stage="password", source_address="10.0.0.8", user_agent=None
        )
        session.commit()
        for _ in range(settings.admin_max_failed_logins - 1):
            with pytest.raises(AuthenticationRequired):
                _second_factor(session, settings, user, "000000", ip="10.0.0.8")
        with pytest.raises(AuthenticationRequired):
            sign_in(session, settings, admin.email, "not the password", "10.0.0.8")
        assert admin_sessions.load(session, settings, raw) is None
        with pytest.raises(RateLimited):
            _second_factor(session, settings, user, admin.code(), ip="10.0.0.8")


def test_second_factor_is_throttled_per_source_address(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "support")
    with sessions() as session:
        for n in range(accounts.ADDRESS_FAILURE_LIMIT):
            with pytest.raises(AuthenticationRequired):
                sign_in(session, settings, f"guess{n}@paydesk.test", "x" * 12, "10.9.9.7")
        user = accounts.get_admin(session, admin.user_id)
        with pytest.raises(RateLimited):
            _second_factor(session, settings, user, admin.code(), ip="10.9.9.7")
