"""Changing a password, and the enrolment seed of a session."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paydesk.auth import accounts, two_factor
from paydesk.auth import sessions as admin_sessions
from paydesk.db.models import AdminSession, AuditEntry
from paydesk.errors import InvalidInput
from paydesk.settings import Settings
from tests.support.admins import PASSWORD, make_admin

NEW = "another long passphrase"


def _change(
    session: Session, settings: Settings, user_id: int, current: str, new: str, again: str
) -> int:
    user = accounts.get_admin(session, user_id)
    return accounts.change_password(
        session,
        settings,
        user,
        current=current,
        new=new,
        repeated=again,
        keep_session_id=None,
        source_address="203.0.113.9",
    )


def test_change_password_rehashes_ends_sessions_and_is_audited(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "viewer", two_factor=False)
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        kept = admin_sessions.start(
            session, settings, user, stage="full", source_address=None, user_agent=None
        )
        admin_sessions.start(
            session, settings, user, stage="full", source_address=None, user_agent=None
        )
        session.commit()
        kept_row = admin_sessions.load(session, settings, kept)
        assert kept_row is not None
        ended = accounts.change_password(
            session,
            settings,
            user,
            current=PASSWORD,
            new=NEW,
            repeated=NEW,
            keep_session_id=kept_row.row.id,
            source_address=None,
        )
        session.commit()
        assert ended == 1
        assert admin_sessions.load(session, settings, kept) is not None
        live = session.scalars(
            select(AdminSession).where(
                AdminSession.user_id == user.id, AdminSession.revoked_at.is_(None)
            )
        ).all()
        assert [row.id for row in live] == [kept_row.row.id]
        assert user.password_hash.startswith("$argon2id$")
        assert accounts.check_password(session, settings, admin.email, NEW, source_address=None)
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "admin.change_password")
        ).one()
        assert (entry.outcome, entry.actor) == ("success", admin.email)
        assert NEW not in f"{entry.before} {entry.after}"


@pytest.mark.parametrize(
    ("current", "new", "again", "code"),
    [
        (PASSWORD, NEW, NEW + "x", "passwords_differ"),
        (PASSWORD, "x" * 11, "x" * 11, "password_too_short"),
        (PASSWORD, "x" * 1025, "x" * 1025, "password_too_long"),
        (PASSWORD, PASSWORD, PASSWORD, "password_unchanged"),
        ("wrong", NEW, NEW, "wrong_current_password"),
        ("", NEW, NEW, "missing_field"),
    ],
)
def test_change_password_refusals(
    sessions: sessionmaker[Session],
    settings: Settings,
    current: str,
    new: str,
    again: str,
    code: str,
) -> None:
    admin = make_admin(sessions, settings, "viewer", two_factor=False)
    with sessions() as session:
        with pytest.raises(InvalidInput) as refused:
            _change(session, settings, admin.user_id, current, new, again)
        assert refused.value.code == code
        session.commit()
        user = accounts.get_admin(session, admin.user_id)
        assert user.failed_logins == (1 if code == "wrong_current_password" else 0)
        assert accounts.check_password(
            session, settings, admin.email, PASSWORD, source_address=None
        )


def test_wrong_current_passwords_lock_the_account(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    admin = make_admin(sessions, settings, "viewer", two_factor=False)
    with sessions() as session:
        for _ in range(settings.admin_max_failed_logins):
            with pytest.raises(InvalidInput):
                _change(session, settings, admin.user_id, "wrong", NEW, NEW)
            session.commit()
        user = accounts.get_admin(session, admin.user_id)
        assert accounts.locked(user)
        with pytest.raises(InvalidInput) as locked:
            _change(session, settings, admin.user_id, PASSWORD, NEW, NEW)
        assert locked.value.code == "account_locked"


def test_enrolment_seed_is_stable_per_session_and_differs_between_sessions(
    settings: Settings,
) -> None:
    first = two_factor.enrolment_seed(settings, "a" * 64)
    assert first == two_factor.enrolment_seed(settings, "a" * 64)
    assert first != two_factor.enrolment_seed(settings, "b" * 64)
    assert len(first) == 32
    pyotp.TOTP(first).now()  # a valid base32 TOTP seed
    other_key = settings.model_copy(update={"secret_key": type(settings.secret_key)("z" * 40)})
    assert two_factor.enrolment_seed(other_key, "a" * 64) != first
