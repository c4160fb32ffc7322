"""Admin accounts: passwords (argon2id), TOTP, recovery codes, sign-in with lockout.

Sign-in is two steps: ``check_password`` and ``check_second_factor`` (a TOTP code,
each time step accepted once, or an unused recovery code). Both are throttled per
source address (spraying across accounts) and back off per account *and* address
(``lockout``: an attacker elsewhere cannot lock the owner out). Every attempt is
audited. The second factor itself (enrolment, codes, recovery codes) is
``paydesk.auth.two_factor``.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from paydesk.auth import audit, lockout, roles
from paydesk.auth.two_factor import totp_reused, use_recovery_code, verify_totp
from paydesk.db.models import AdminApiToken, AdminRecoveryCode, AdminSession, AdminUser, AuditEntry
from paydesk.db.models.base import utcnow
from paydesk.errors import AuthenticationRequired, Conflict, InvalidInput, NotFound, RateLimited
from paydesk.settings import Settings

# argon2id with the library's RFC 9106 "low memory" profile defaults.
_HASHER = PasswordHasher()
# Every argon2 hash holds ``memory_cost`` KiB (64 MiB) while it runs: a burst of
# parallel sign-ins would hold that many times over (32 wrong passwords grew the
# process by ~1.2 GB, the pod's limit is 512 Mi). At most this much memory is spent
# on hashing at once; a request finding every slot busy waits a moment, then gets 429.
HASH_MEMORY_BUDGET_KIB = 96 * 1024
HASH_SLOTS = max(1, HASH_MEMORY_BUDGET_KIB // _HASHER.memory_cost)
HASH_WAIT_SECONDS = 2.0
# Process-wide on purpose: the memory it guards is the process's.
_hash_slots = threading.BoundedSemaphore(HASH_SLOTS)


@contextmanager
def _hash_slot() -> Iterator[None]:
    if not _hash_slots.acquire(timeout=HASH_WAIT_SECONDS):
        raise RateLimited(
            "Too many sign-ins are being checked right now; retry in a few seconds.",
            code="sign_in_busy",
        )
    try:
        yield
    finally:
        _hash_slots.release()


# Verified against when the email is unknown, so timing does not reveal accounts.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 12
# argon2 reads the whole password: a bound keeps one form post from costing seconds.
MAX_PASSWORD_LENGTH = 1024
# Accounts failed against from one address within the window before it is throttled.
ADDRESS_FAILURE_LIMIT = 20
ADDRESS_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Principal:
    """An authenticated admin: via a console session or an API token."""

    user_id: int
    email: str
    role: roles.Role
    via: str  # "session" | "token"
    credential_id: int

    @property
    def actor(self) -> str:
        """How the audit log and refunds' ``requested_by`` name this admin."""
        return self.email


def check_password_rules(password: str, *, field: str = "password") -> None:
    """``InvalidInput`` unless ``password`` is acceptable as a new password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
            code="password_too_short",
            field=field,
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Passwords are limited to {MAX_PASSWORD_LENGTH} characters.",
            code="password_too_long",
            field=field,
        )


def hash_password(password: str) -> str:
    """argon2id hash of ``password`` (checked against the rules first)."""
    check_password_rules(password)
    with _hash_slot():
        return _HASHER.hash(password)


def generate_password() -> str:
    """A random password for a new account (printed once)."""
    return secrets.token_urlsafe(15)


def _normal_email(email: str) -> str:
    return email.strip().lower()


def find_admin(session: Session, email: str) -> AdminUser | None:
    """The admin with ``email`` (case-insensitive), if any."""
    return session.scalars(select(AdminUser).where(AdminUser.email == _normal_email(email))).first()


def get_admin(session: Session, user_id: int) -> AdminUser:
    """The admin ``user_id``; ``NotFound`` otherwise."""
    user = session.get(AdminUser, user_id)
    if user is None:
        raise NotFound(f"No admin {user_id}.", code="admin_not_found")
    return user


def create_admin(
    session: Session,
    settings: Settings,
    *,
    email: str,
    role: str,
    password: str | None = None,
    actor: str = "cli",
    source_address: str | None = None,
) -> tuple[AdminUser, str]:
    """Create an admin; returns the row and the password (generated when not given)."""
    if not roles.is_role(role):
        raise InvalidInput(f"Unknown role {role!r}.", field="role")
    email = _normal_email(email)
    if "@" not in email or len(email) > 320:
        raise InvalidInput("Expected an email address.", field="email")
    if find_admin(session, email) is not None:
        raise Conflict(f"An admin {email} exists already.", code="admin_exists")
    password = password or generate_password()
    user = AdminUser(email=email, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit.record(
        session,
        settings,
        actor=actor,
        action="admin.create",
        target=email,
        after={"role": role},
        source_address=source_address,
    )
    return user, password


def revoke_credentials(session: Session, user_id: int) -> None:
    """End every session and API token of ``user_id`` now."""
    now = utcnow()
    session.execute(
        update(AdminSession)
        .where(AdminSession.user_id == user_id, AdminSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(AdminApiToken)
        .where(AdminApiToken.user_id == user_id, AdminApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _end_pending_sessions(
    session: Session, user_id: int, *, from_address: str | bool | None = True
) -> None:
    """End ``user_id``'s half-finished sign-ins: all (``True``), or those started
    from one address (``None`` for an unknown one)."""
    statement = update(AdminSession).where(
        AdminSession.user_id == user_id,
        AdminSession.revoked_at.is_(None),
        AdminSession.stage != "full",
    )
    if from_address is None:
        statement = statement.where(AdminSession.source_address.is_(None))
    elif isinstance(from_address, str):
        statement = statement.where(AdminSession.source_address == from_address)
    session.execute(statement.values(revoked_at=utcnow()))


def disable_admin(
    session: Session,
    settings: Settings,
    user: AdminUser,
    *,
    actor: str,
    source_address: str | None = None,
) -> None:
    """Disable ``user``: sign-in refused, sessions and tokens revoked at once."""
    was = user.disabled_at is not None
    user.disabled_at = user.disabled_at or utcnow()
    revoke_credentials(session, user.id)
    audit.record(
        session,
        settings,
        actor=actor,
        action="admin.disable",
        target=user.email,
        before={"disabled": was},
        after={"disabled": True},
        source_address=source_address,
    )


def set_role(
    session: Session,
    settings: Settings,
    user: AdminUser,
    role: str,
    *,
    actor: str,
    source_address: str | None = None,
) -> None:
    """Change ``user``'s role; their sessions and tokens end (they sign in again)."""
    if not roles.is_role(role):
        raise InvalidInput(f"Unknown role {role!r}.", field="role")
    before = user.role
    user.role = role
    revoke_credentials(session, user.id)
    audit.record(
        session,
        settings,
        actor=actor,
        action="admin.role",
        target=user.email,
        before={"role": before},
        after={"role": role},
        source_address=source_address,
    )


def reset_two_factor(
    session: Session,
    settings: Settings,
    user: AdminUser,
    *,
    actor: str,
    source_address: str | None = None,
) -> None:
    """Forget ``user``'s TOTP seed and recovery codes; they enrol again at next sign-in."""
    user.totp_secret_encrypted = None
    user.totp_enabled = False
    user.totp_last_step = 0
    for code in session.scalars(
        select(AdminRecoveryCode).where(AdminRecoveryCode.user_id == user.id)
    ):
        session.delete(code)
    revoke_credentials(session, user.id)
    audit.record(
        session,
        settings,
        actor=actor,
        action="admin.reset_2fa",
        target=user.email,
        source_address=source_address,
    )


def _recent_failures_from(session: Session, source_address: str | None) -> int:
    """How many different accounts failed to sign in from ``source_address`` lately.

    Distinct accounts, not attempts: an address guessing across accounts (spraying)
    is throttled, while one person behind a shared address (an office, a NAT)
    mistyping their own password cannot lock out everyone else there; repeated
    failures on one account are the account lockout's business.
    """
    if not source_address:
        return 0
    since = utcnow() - ADDRESS_WINDOW
    return int(
        session.scalar(
            select(func.count(func.distinct(AuditEntry.target)))
            .select_from(AuditEntry)
            .where(
                AuditEntry.action == "auth.sign_in",
                AuditEntry.outcome == "failure",
                AuditEntry.source_address == source_address,
                AuditEntry.at >= since,
            )
        )
        or 0
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _fail(
    session: Session,
    settings: Settings,
    email: str,
    source: str | None,
    reason: str,
    message: str = "Wrong email, password or code.",
) -> AuthenticationRequired:
    audit.record(
        session,
        settings,
        actor=email or "(none)",
        action="auth.sign_in",
        target=email or None,
        outcome="failure",
        after={"reason": reason},
        source_address=source,
    )
    return AuthenticationRequired(message, code="sign_in_failed")


def _refuse_while_backing_off(
    session: Session, settings: Settings, email: str, source: str | None, now: datetime
) -> None:
    """``RateLimited`` (audited, not counted) while (``email``, ``source``) waits.

    Checked before the account is looked up and before any hash, for unknown emails
    too: the refusal says nothing about whether the account exists, and costs no
    argon2 memory.
    """
    wait = lockout.backing_off(session, settings, email, source, now=now)
    if wait:
        _fail(session, settings, email, source, lockout.BACKING_OFF)
        raise RateLimited(
            f"Too many failed sign-ins for this account from this address; "
            f"retry in {wait} seconds.",
            code="sign_in_backing_off",
            details={"retry_after_seconds": wait},
        )


def check_password(
    session: Session,
    settings: Settings,
    email: str,
    password: str,
    *,
    source_address: str | None,
    now: datetime | None = None,
) -> AdminUser:
    """First sign-in step. Raises ``AuthenticationRequired`` (audited) or ``RateLimited``.

    The caller must commit even when this raises, so failures count. ``now`` is for
    tests of the back-off (the audit rows keep the real time).
    """
    now = now or utcnow()
    if _recent_failures_from(session, source_address) >= ADDRESS_FAILURE_LIMIT:
        raise RateLimited("Too many failed sign-ins from this address; wait a few minutes.")
    email = _normal_email(email)[:320]
    _refuse_while_backing_off(session, settings, email, source_address, now)
    user = find_admin(session, email)
    if user is None:
        _verify(_DUMMY_HASH, password)
        raise _fail(session, settings, email, source_address, "unknown_email")
    if locked(user, now=now):
        # Account-wide: only ``change_password`` sets it (a signed-in session guessing).
        _verify(_DUMMY_HASH, password)
        raise _fail(session, settings, email, source_address, "locked")
    if not _verify(user.password_hash, password):
        raise sign_in_failed(
            session, settings, user, reason="wrong_password", source=source_address, now=now
        )
    if user.disabled_at is not None:
        raise _fail(session, settings, email, source_address, "disabled")
    if _HASHER.check_needs_rehash(user.password_hash):
        with _hash_slot():
            user.password_hash = _HASHER.hash(password)
    return user


def _verify(password_hash: str, password: str) -> bool:
    """argon2 check inside a hash slot (``RateLimited`` when none frees up in time)."""
    with _hash_slot():
        try:
            return _HASHER.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def signed_in(
    session: Session, settings: Settings, user: AdminUser, *, method: str, source: str | None
) -> None:
    """Record a completed sign-in."""
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = utcnow()
    audit.record(
        session,
        settings,
        actor=user.email,
        action="auth.sign_in",
        target=user.email,
        after={"method": method},
        source_address=source,
    )


def change_password(
    session: Session,
    settings: Settings,
    user: AdminUser,
    *,
    current: str,
    new: str,
    repeated: str,
    keep_session_id: int | None,
    source_address: str | None,
) -> int:
    """Replace ``user``'s password; returns how many of their other sessions were ended.

    The current password must be right: a wrong one counts towards the lockout like
    a wrong sign-in (at the limit the account locks and its sessions and tokens end),
    so a borrowed session cannot guess it. The new one follows the rules of
    ``check_password_rules``, is typed twice and differs from the current one. Every
    console session of ``user`` but ``keep_session_id`` ends; API tokens stay. Audited
    on success; a refusal raises ``InvalidInput`` and the caller audits it, committing
    either way so that the count holds.
    """
    if not current or not new or not repeated:
        raise InvalidInput("Fill in all three fields.", code="missing_field")
    if new != repeated:
        raise InvalidInput(
            "The two new passwords differ.", code="passwords_differ", field="new_password_repeat"
        )
    check_password_rules(new, field="new_password")
    if locked(user):
        _verify(_DUMMY_HASH, current)
        raise InvalidInput(
            "The account is locked after failed attempts; try again later.",
            code="account_locked",
            field="current_password",
        )
    if not _verify(user.password_hash, current):
        user.failed_logins += 1
        if user.failed_logins >= settings.admin_max_failed_logins:
            user.locked_until = utcnow() + timedelta(minutes=settings.admin_lockout_minutes)
            user.failed_logins = 0
            revoke_credentials(session, user.id)
        raise InvalidInput(
            "The current password is wrong.",
            code="wrong_current_password",
            field="current_password",
        )
    if secrets.compare_digest(new.encode(), current.encode()):
        raise InvalidInput(
            "The new password must differ from the current one.",
            code="password_unchanged",
            field="new_password",
        )
    with _hash_slot():
        user.password_hash = _HASHER.hash(new)
    user.failed_logins = 0
    others = select(AdminSession).where(
        AdminSession.user_id == user.id, AdminSession.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        others = others.where(AdminSession.id != keep_session_id)
    ended = 0
    now = utcnow()
    for row in session.scalars(others):
        row.revoked_at = now
        ended += 1
    audit.record(
        session,
        settings,
        actor=user.email,
        action="admin.change_password",
        target=user.email,
        after={"other_sessions_ended": ended},
        source_address=source_address,
    )
    return ended


def sign_in_failed(
    session: Session,
    settings: Settings,
    user: AdminUser,
    *,
    reason: str,
    source: str | None,
    message: str = "Wrong email, password or code.",
    now: datetime | None = None,
) -> AuthenticationRequired:
    """Audit a failed step (which counts towards the back-off); returns the error.

    Once (account, address) reaches the limit, the half-finished sign-ins started
    from that address end (so a pending session cannot keep guessing codes after
    the wait). Nothing else does: the owner's sessions and API tokens stay, and the
    owner signs in from their own address. Whoever sends wrong codes failed to prove
    the second factor, so they must not sign the owner out or break their automation
    (5 wrong codes used to revoke every token of the account).
    """
    error = _fail(session, settings, user.email, source, reason, message)
    if lockout.reached_limit(session, settings, user.email, source, now=now or utcnow()):
        _end_pending_sessions(session, user.id, from_address=source)
    return error


def locked(user: AdminUser, *, now: datetime | None = None) -> bool:
    """Whether ``user`` is inside a lockout period."""
    return user.locked_until is not None and _aware(user.locked_until) > (now or utcnow())


def check_second_factor(
    session: Session,
    settings: Settings,
    user: AdminUser,
    *,
    code: str,
    recovery_code: str,
    source_address: str | None,
    now: datetime | None = None,
) -> str:
    """Second sign-in step; returns the method used (``totp`` or ``recovery_code``).

    Refused (audited, counted towards the back-off) unless the code is right *and*
    (account, address) is not backing off *and* the address is not throttled: a
    correct code during the wait does not get in, whichever step caused it. Raises
    ``AuthenticationRequired`` or ``RateLimited``; the caller must commit either way.
    """
    now = now or utcnow()
    if _recent_failures_from(session, source_address) >= ADDRESS_FAILURE_LIMIT:
        raise RateLimited("Too many failed sign-ins from this address; wait a few minutes.")
    _refuse_while_backing_off(session, settings, user.email, source_address, now)
    if locked(user, now=now):
        # The account-wide lockout outlives the attempt: this sign-in ends here.
        _end_pending_sessions(session, user.id)
        raise _fail(session, settings, user.email, source_address, "locked")
    if code and verify_totp(settings, user, code):
        return "totp"
    if recovery_code and use_recovery_code(session, settings, user, recovery_code):
        return "recovery_code"
    if code and not recovery_code and totp_reused(settings, user, code):
        # The right code, but its 30 s step was used already (a double submit, or a
        # second sign-in within the window): still a failure, with a message that
        # says what to do. Whoever sends it already knows the password and the code.
        raise sign_in_failed(
            session,
            settings,
            user,
            reason="code_reused",
            source=source_address,
            now=now,
            message="This code was already used. Wait for the next code from your "
            "authenticator app and enter that one.",
        )
    raise sign_in_failed(
        session, settings, user, reason="wrong_code", source=source_address, now=now
    )
