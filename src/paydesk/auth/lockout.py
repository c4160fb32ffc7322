"""Sign-in back-off per account *and* source address, read from the audit log.

A lockout keyed by the account alone lets anyone who knows an admin's email lock
them out from anywhere (5 wrong passwords, again every 15 minutes). Like mature
identity systems (Keycloak's brute-force detection, AD FS's extranet smart
lockout), Paydesk instead counts failures per (account, address): after
``PAYDESK_ADMIN_MAX_FAILED_LOGINS`` consecutive failures from one address on one
account, that pair waits ``2^k`` seconds after its latest failure (k grows by one
with each further failure, from ``FIRST_EXPONENT``) up to
``PAYDESK_ADMIN_LOCKOUT_MINUTES``. The owner signing in from their own address is
not affected; a success from an address, or ``MEMORY`` without failures, starts
that pair afresh, and an operator's ``paydesk admin unlock`` (``unlock``) every
pair of the account.

No state of its own: the failures are the ``auth.sign_in`` failure rows the audit
log records anyway (indexed by target), so nothing can drift out of step with it.
Refusals while waiting are audited with the ``backing_off`` reason and do not
count, so hammering during the wait neither extends it without bound nor pushes
the counted failures out of sight. Spraying many accounts from one address is the
per-address throttle's business (``accounts._recent_failures_from``); a
distributed guess at one account is what the ``PaydeskAdminSignInFailures`` alert
is for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from paydesk.auth import audit
from paydesk.db.models import AdminUser, AuditEntry
from paydesk.settings import Settings

# The first wait is 2^5 = 32 s, then 64 s, 128 s, … up to the configured cap.
FIRST_EXPONENT = 5
# Failures older than this are forgotten even without a success in between.
MEMORY = timedelta(hours=24)
UNLOCK_ACTION = "admin.unlock"
# The audit reason of a refusal during the wait (not counted as a failure).
BACKING_OFF = "backing_off"
# Refusals written before per-address back-off existed, not counted either.
_NOT_COUNTED = tuple(
    json.dumps({"reason": r}, separators=(",", ":")) for r in (BACKING_OFF, "locked")
)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _address(source_address: str | None) -> ColumnElement[bool]:
    if source_address is None:
        return AuditEntry.source_address.is_(None)
    return AuditEntry.source_address == source_address


def wait_seconds(settings: Settings, failures: int) -> int:
    """How long a pair with ``failures`` counted failures waits after the latest one."""
    over = failures - settings.admin_max_failed_logins
    if over < 0:
        return 0
    cap = settings.admin_lockout_minutes * 60
    # The inner min() keeps the shift small however many failures there were.
    return min(cap, 1 << min(FIRST_EXPONENT + over, 40))


def failures(
    session: Session, email: str, source_address: str | None, *, now: datetime
) -> tuple[int, datetime | None]:
    """Counted failures of (``email``, address) since its last success, and the latest."""
    since = now - MEMORY
    # The last fresh start: a success of this pair, or an operator's unlock.
    fresh = session.scalar(
        select(func.max(AuditEntry.at)).where(
            AuditEntry.target == email,
            AuditEntry.at >= since,
            or_(
                and_(
                    AuditEntry.action == "auth.sign_in",
                    AuditEntry.outcome == "success",
                    _address(source_address),
                ),
                AuditEntry.action == UNLOCK_ACTION,
            ),
        )
    )
    if fresh is not None:
        since = max(since, _aware(fresh))
    count, latest = session.execute(
        select(func.count(), func.max(AuditEntry.at)).where(
            AuditEntry.action == "auth.sign_in",
            AuditEntry.target == email,
            _address(source_address),
            AuditEntry.outcome == "failure",
            AuditEntry.at > since,
            # A NULL ``after`` (none is written for sign-ins) would count.
            func.coalesce(AuditEntry.after, "").not_in(_NOT_COUNTED),
        )
    ).one()
    return int(count or 0), (None if latest is None else _aware(latest))


def backing_off(
    session: Session,
    settings: Settings,
    email: str,
    source_address: str | None,
    *,
    now: datetime,
) -> int:
    """Seconds (rounded up, ≥ 1) (``email``, address) must still wait; 0 when it may try."""
    count, latest = failures(session, email, source_address, now=now)
    wait = wait_seconds(settings, count)
    if wait == 0 or latest is None:
        return 0
    left = (latest + timedelta(seconds=wait) - now).total_seconds()
    return max(1, int(left) + (left % 1 > 0)) if left > 0 else 0


def reached_limit(
    session: Session, settings: Settings, email: str, source_address: str | None, *, now: datetime
) -> bool:
    """Whether (``email``, address) has failed often enough to be waiting now."""
    count, _ = failures(session, email, source_address, now=now)
    return count >= settings.admin_max_failed_logins


def unlock(
    session: Session,
    settings: Settings,
    user: AdminUser,
    *,
    actor: str,
    source_address: str | None = None,
) -> None:
    """End every wait of ``user`` (all addresses) and an account-wide lock; audited.

    For an operator whose admin is stuck (say, their office shares an address with a
    guesser). It ends no session: nothing was compromised by the failures.
    """
    user.locked_until = None
    user.failed_logins = 0
    audit.record(
        session,
        settings,
        actor=actor,
        action=UNLOCK_ACTION,
        target=user.email,
        source_address=source_address,
    )
