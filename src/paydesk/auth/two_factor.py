"""The second factor of an admin account: TOTP enrolment and codes, recovery codes.

A TOTP seed is stored encrypted (``PAYDESK_SECRET_KEY``); each time step is accepted
once, claimed atomically so one code never opens two sessions. Recovery codes are
stored as keyed digests and each works once. Counting failures, lockout and audit
are the sign-in's business (``paydesk.auth.accounts.check_second_factor``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

import pyotp
import segno
from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from paydesk.auth.keys import decrypt, derived_key, encrypt, keyed_digest
from paydesk.db.models import AdminRecoveryCode, AdminUser
from paydesk.db.models.base import utcnow
from paydesk.errors import Conflict
from paydesk.settings import Settings

RECOVERY_CODES = 10
TOTP_ISSUER = "Paydesk"


def start_enrolment(settings: Settings, user: AdminUser, *, seed: str | None = None) -> str:
    """Give ``user`` a (not yet enabled) TOTP seed, fresh unless given; returns it.

    Refused (``Conflict``) once the account has a confirmed seed: a stale enrolment
    session (opened before the owner enrolled) must not replace their two-factor.
    Only ``reset_two_factor`` clears a confirmed seed.
    """
    if user.totp_enabled:
        raise Conflict(
            "Two-factor is already set up for this account; sign in with its code.",
            code="two_factor_already_enrolled",
        )
    seed = seed or pyotp.random_base32()
    user.totp_secret_encrypted = encrypt(settings, seed)
    user.totp_enabled = False
    user.totp_last_step = 0
    return seed


def enrolment_seed(settings: Settings, session_digest: str) -> str:
    """The pending TOTP seed of the enrolment session whose stored digest is given.

    Derived (keyed by ``PAYDESK_SECRET_KEY``) from the session, so reloading the
    enrolment page shows the same seed, while another sign-in — another session,
    perhaps someone else's who knows the password — gets a different one. It ends
    with the session: confirmed, signed out or expired.
    """
    mac = hmac.new(derived_key(settings, "totp-enrolment"), session_digest.encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()[:20]).decode()


def totp_seed(settings: Settings, user: AdminUser) -> str | None:
    """The decrypted TOTP seed, if one was set."""
    if user.totp_secret_encrypted is None:
        return None
    return decrypt(settings, user.totp_secret_encrypted)


def provisioning_uri(seed: str, email: str) -> str:
    """The ``otpauth://`` URI authenticator apps scan."""
    return pyotp.TOTP(seed).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no raster library needed)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, dark="#111", light="#fff"))


def verify_totp(
    settings: Settings, user: AdminUser, code: str, *, now: float | None = None
) -> bool:
    """Check ``code`` against the seed (±1 step); each step is accepted once."""
    seed = totp_seed(settings, user)
    code = code.strip().replace(" ", "")
    if seed is None or not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(seed)
    moment = time.time() if now is None else now
    current = totp.timecode(datetime.fromtimestamp(moment, UTC))
    for step in (current - 1, current, current + 1):
        if step <= user.totp_last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return _claim_step(user, step)
    return False


def totp_reused(
    settings: Settings, user: AdminUser, code: str, *, now: float | None = None
) -> bool:
    """Whether ``code`` is right for a step (±1) that was already used."""
    seed = totp_seed(settings, user)
    code = code.strip().replace(" ", "")
    if seed is None or not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(seed)
    current = totp.timecode(datetime.fromtimestamp(time.time() if now is None else now, UTC))
    return any(
        step <= user.totp_last_step and secrets.compare_digest(totp.generate_otp(step), code)
        for step in (current - 1, current, current + 1)
    )


def has_recovery_codes(session: Session, user: AdminUser) -> bool:
    """Whether ``user`` has an unused recovery code (the 2FA page offers them only then)."""
    return (
        session.scalars(
            select(AdminRecoveryCode.id).where(
                AdminRecoveryCode.user_id == user.id, AdminRecoveryCode.used_at.is_(None)
            )
        ).first()
        is not None
    )


def _claim_step(user: AdminUser, step: int) -> bool:
    """Record ``step`` as used, atomically: of concurrent requests sending the same
    code, exactly one moves the column forward (the others wait for its row lock and
    then find it moved), so one code never opens two sessions."""
    session = object_session(user)
    if session is None:  # a detached row (no database to race): plain assignment
        user.totp_last_step = step
        return True
    moved = session.execute(
        update(AdminUser)
        .where(AdminUser.id == user.id, AdminUser.totp_last_step < step)
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def issue_recovery_codes(session: Session, settings: Settings, user: AdminUser) -> list[str]:
    """Replace ``user``'s recovery codes with new ones; returns them (shown once)."""
    for old in session.scalars(
        select(AdminRecoveryCode).where(AdminRecoveryCode.user_id == user.id)
    ):
        session.delete(old)
    session.flush()
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(6)
        code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
        codes.append(code)
        session.add(
            AdminRecoveryCode(user_id=user.id, code_digest=keyed_digest(settings, "recovery", raw))
        )
    session.flush()
    return codes


def use_recovery_code(session: Session, settings: Settings, user: AdminUser, code: str) -> bool:
    """Consume an unused recovery code of ``user``."""
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    row = session.scalars(
        select(AdminRecoveryCode).where(
            AdminRecoveryCode.user_id == user.id,
            AdminRecoveryCode.code_digest == keyed_digest(settings, "recovery", normal),
            AdminRecoveryCode.used_at.is_(None),
        )
    ).first()
    if row is None:
        return False
    row.used_at = utcnow()
    session.flush()
    return True


def enable_two_factor(settings: Settings, user: AdminUser, code: str) -> bool:
    """Finish enrolment: the first valid code switches TOTP on."""
    if user.totp_secret_encrypted is None or not verify_totp(settings, user, code):
        return False
    user.totp_enabled = True
    return True
