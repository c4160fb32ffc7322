"""Admins and API tokens for tests, made through the same services the CLI uses."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
from sqlalchemy.orm import Session, sessionmaker

from paydesk.auth import accounts, tokens
from paydesk.auth.two_factor import start_enrolment
from paydesk.settings import Settings

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class SeededAdmin:
    """An admin's id, email, password and TOTP seed (None: no two-factor)."""

    user_id: int
    email: str
    password: str
    seed: str | None

    def code(self) -> str:
        """The current TOTP code."""
        assert self.seed is not None
        return pyotp.TOTP(self.seed).now()


def make_admin(
    sessions: sessionmaker[Session],
    settings: Settings,
    role: str,
    *,
    email: str | None = None,
    two_factor: bool = True,
) -> SeededAdmin:
    """Create an admin of ``role`` (enrolled in TOTP unless ``two_factor`` is False)."""
    email = email or f"{role}@paydesk.test"
    with sessions() as session:
        user, _ = accounts.create_admin(
            session, settings, email=email, role=role, password=PASSWORD, actor="test"
        )
        seed = None
        if two_factor:
            seed = start_enrolment(settings, user)
            user.totp_enabled = True
        session.commit()
        return SeededAdmin(user.id, email, PASSWORD, seed)


def make_token(
    sessions: sessionmaker[Session],
    settings: Settings,
    admin: SeededAdmin,
    role: str | None = None,
    days: int = 30,
) -> str:
    """An Admin API token of ``admin`` (their role unless ``role``)."""
    with sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        _, raw = tokens.create(
            session, settings, user, name="test", role=role or user.role, days=days, actor="test"
        )
        session.commit()
        return raw


def admin_token(sessions: sessionmaker[Session], settings: Settings, role: str = "admin") -> str:
    """A fresh admin of ``role`` and a token of theirs."""
    return make_token(sessions, settings, make_admin(sessions, settings, role))
