"""`paydesk admin create|disable|reset-2fa|unlock` and `paydesk audit verify`, as an operator."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import Engine, select, text

from paydesk.auth import accounts, lockout, tokens, two_factor
from paydesk.db.engine import session_factory
from paydesk.db.models import AdminUser
from paydesk.db.models.base import utcnow
from paydesk.errors import AuthenticationRequired, RateLimited
from paydesk.settings import load_settings
from tests.support.admins import PASSWORD, make_admin

pytestmark = pytest.mark.postgres
SECRET = "cli-test-secret-key-" + "x" * 20


def paydesk(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    env.update({"PAYDESK_DATABASE_URL": url, "PAYDESK_SECRET_KEY": SECRET})
    return subprocess.run(
        [sys.executable, "-m", "paydesk", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_create_disable_reset_and_verify(migrated_url: str, engine: Engine) -> None:
    settings = load_settings({"PAYDESK_DATABASE_URL": migrated_url, "PAYDESK_SECRET_KEY": SECRET})
    created = paydesk(
        migrated_url, "admin", "create", "--email", "Ops@Example.com", "--role", "admin"
    )
    assert created.returncode == 0, created.stderr
    password = re.search(r"Password \(shown once\): (\S+)", created.stdout)
    assert password
    assert paydesk(migrated_url, "admin", "create", "--email", "ops@example.com").returncode == 1
    assert (
        paydesk(
            migrated_url, "admin", "create", "--email", "x@example.com", "--role", "god"
        ).returncode
        == 1
    )

    sessions = session_factory(engine)
    with sessions() as session:
        user = accounts.check_password(
            session, settings, "ops@example.com", password.group(1), source_address=None
        )
        two_factor.start_enrolment(settings, user)
        user.totp_enabled = True
        _, token = tokens.create(session, settings, user, name="t", role="admin", actor="t")
        session.commit()

    reset = paydesk(migrated_url, "admin", "reset-2fa", "--email", "ops@example.com")
    assert reset.returncode == 0, reset.stderr
    with sessions() as session:
        user = session.scalars(select(AdminUser)).one()
        assert not user.totp_enabled
        assert user.totp_secret_encrypted is None
        with pytest.raises(Exception, match="token"):
            tokens.authenticate(session, settings, token)

    disabled = paydesk(migrated_url, "admin", "disable", "--email", "ops@example.com")
    assert disabled.returncode == 0, disabled.stderr
    assert (
        paydesk(migrated_url, "admin", "disable", "--email", "nobody@example.com").returncode == 1
    )
    with sessions() as session:
        assert session.scalars(select(AdminUser)).one().disabled_at is not None

    verified = paydesk(migrated_url, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "4 entries verified" in verified.stdout  # create, reset-2fa, token.create, disable

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
        connection.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE id = 2"))
    tampered = paydesk(migrated_url, "audit", "verify")
    assert tampered.returncode == 1
    assert "TAMPERED at entry 2" in tampered.stderr
    # Secrets never reach the output beyond the one-time password.
    for output in (reset, disabled, verified, tampered):
        assert password.group(1) not in output.stdout + output.stderr


def test_unlock_ends_the_back_off_of_every_address(migrated_url: str, engine: Engine) -> None:
    settings = load_settings({"PAYDESK_DATABASE_URL": migrated_url, "PAYDESK_SECRET_KEY": SECRET})
    sessions = session_factory(engine)
    admin = make_admin(sessions, settings, "viewer", email="stuck@example.com", two_factor=False)
    with sessions() as session:
        for n in range(settings.admin_max_failed_logins):
            with pytest.raises(AuthenticationRequired):
                accounts.check_password(
                    session, settings, admin.email, f"wrong {n}", source_address="192.0.2.9"
                )
            session.commit()
        with pytest.raises(RateLimited):
            accounts.check_password(
                session, settings, admin.email, PASSWORD, source_address="192.0.2.9"
            )
        session.commit()
    unlocked = paydesk(migrated_url, "admin", "unlock", "--email", "STUCK@example.com")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "back-off ended for stuck@example.com" in unlocked.stdout
    assert paydesk(migrated_url, "admin", "unlock", "--email", "nobody@x.test").returncode == 1
    with sessions() as session:
        user = accounts.check_password(
            session, settings, admin.email, PASSWORD, source_address="192.0.2.9"
        )
        assert user.id == admin.user_id
        assert lockout.failures(session, admin.email, "192.0.2.9", now=utcnow())[0] == 0
