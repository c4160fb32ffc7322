"""Roles and the one permission matrix, used by the console and the Admin API alike.

The matrix is documented in ``docs/ACCESS.md``; a test checks the two agree and
another drives every Admin API route and console action with every role.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from paydesk.errors import PermissionDenied

Role = Literal["viewer", "support", "finance", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "support", "finance", "admin")
_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


class Permission(StrEnum):
    """Everything an admin can be allowed to do."""

    READ = "read"
    CUSTOMERS_WRITE = "customers.write"
    PAYMENTS_WRITE = "payments.write"
    PAYMENTS_REFRESH = "payments.refresh"
    REFUNDS_CREATE = "refunds.create"
    DISPUTES_MANAGE = "disputes.manage"
    SUBSCRIPTIONS_CREATE = "subscriptions.create"
    SUBSCRIPTIONS_CHANGE_TIER = "subscriptions.change_tier"
    SUBSCRIPTIONS_CANCEL = "subscriptions.cancel"
    SUBSCRIPTIONS_RESUME = "subscriptions.resume"
    EVENTS_REPLAY = "events.replay"
    AUDIT_READ = "audit.read"
    SETTINGS_READ = "settings.read"
    TOKENS_OWN = "tokens.own"
    ADMINS_MANAGE = "admins.manage"


_ALL: frozenset[Role] = frozenset(ROLES)
_STAFF: frozenset[Role] = frozenset({"support", "finance", "admin"})
_MONEY: frozenset[Role] = frozenset({"finance", "admin"})

MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.READ: _ALL,
    Permission.CUSTOMERS_WRITE: _STAFF,
    Permission.PAYMENTS_WRITE: _MONEY,
    Permission.PAYMENTS_REFRESH: _STAFF,
    Permission.REFUNDS_CREATE: _STAFF,
    Permission.DISPUTES_MANAGE: _MONEY,
    Permission.SUBSCRIPTIONS_CREATE: _MONEY,
    Permission.SUBSCRIPTIONS_CHANGE_TIER: _STAFF,
    Permission.SUBSCRIPTIONS_CANCEL: _STAFF,
    Permission.SUBSCRIPTIONS_RESUME: _STAFF,
    Permission.EVENTS_REPLAY: _STAFF,
    Permission.AUDIT_READ: _MONEY,
    Permission.SETTINGS_READ: _MONEY,
    Permission.TOKENS_OWN: _ALL,
    Permission.ADMINS_MANAGE: frozenset({"admin"}),
}

# In live mode these move real money or end real revenue: finance or admin only.
LIVE_MODE_MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.REFUNDS_CREATE: _MONEY,
    Permission.SUBSCRIPTIONS_CANCEL: _MONEY,
}

# Roles holding any permission that moves money must use two-factor sign-in.
TWO_FACTOR_ROLES: frozenset[Role] = _STAFF


def is_role(value: str) -> bool:
    """Whether ``value`` names a role."""
    return value in _RANK


def rank(role: str) -> int:
    """Order of roles, viewer lowest; unknown roles rank below every role."""
    return _RANK.get(role, -1)


def as_role(value: str) -> Role:
    """``value`` as a role; an unknown value is the least powerful role."""
    return ROLES[max(rank(value), 0)]


def lesser_role(first: str, second: str) -> Role:
    """The less powerful of two roles (a token never exceeds its owner)."""
    lower = first if rank(first) <= rank(second) else second
    return ROLES[max(rank(lower), 0)]


def allowed_roles(permission: Permission, *, live: bool) -> frozenset[Role]:
    """The roles that hold ``permission`` in the given key mode."""
    if live and permission in LIVE_MODE_MATRIX:
        return LIVE_MODE_MATRIX[permission]
    return MATRIX[permission]


def can(role: str, permission: Permission, *, live: bool) -> bool:
    """Whether ``role`` holds ``permission``."""
    return role in allowed_roles(permission, live=live)


def require_two_factor(role: str) -> bool:
    """Whether accounts of ``role`` must have TOTP enabled to sign in."""
    return role in TWO_FACTOR_ROLES


def check(role: str, permission: Permission, *, live: bool) -> None:
    """Raise ``PermissionDenied`` unless ``role`` holds ``permission``."""
    if not can(role, permission, live=live):
        allowed = ", ".join(r for r in ROLES if r in allowed_roles(permission, live=live))
        mode = " in live mode" if live and permission in LIVE_MODE_MATRIX else ""
        raise PermissionDenied(
            f"The {role} role may not {permission.value}{mode}; it needs one of: {allowed}.",
            details={"permission": permission.value},
        )


def matrix_markdown() -> str:
    """The permission matrix as a Markdown table (kept in ``docs/ACCESS.md``)."""
    lines = [
        "| Permission | " + " | ".join(ROLES) + " |",
        "|---|" + "---|" * len(ROLES),
    ]
    for permission in Permission:
        cells = []
        for role in ROLES:
            if can(role, permission, live=False) and can(role, permission, live=True):
                cells.append("yes")
            elif can(role, permission, live=False):
                cells.append("test mode only")
            else:
                cells.append("—")
        lines.append(f"| `{permission.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
