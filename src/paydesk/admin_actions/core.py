"""How an audited admin action runs: declared once, checked once, audited once.

An ``Action`` names an admin mutation (its audit name) and the one permission it
needs. ``perform`` runs it the same way for the console and the Admin API:

1. ``Context.begin`` tells the caller's web layer which mutation is attempted (so
   a refusal or failure is audited, once, by ``paydesk.web.api.admin_auth`` in a
   unit of work of its own after the request's has rolled back), then checks the
   permission against the one matrix (``paydesk.auth.roles``);
2. the domain work runs in the caller's unit of work;
3. the success entry (state before and after) is appended in that same unit of
   work, so the change and its entry commit together or not at all.

The caller's unit of work commits; nothing here does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from paydesk.auth import audit, roles
from paydesk.auth.accounts import Principal
from paydesk.auth.roles import Permission
from paydesk.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Action:
    """An audited admin mutation: its audit name and the permission it needs."""

    name: str
    permission: Permission


def _no_hook(_action: str, _target: str | None) -> None:
    return None


@dataclass(frozen=True)
class Context:
    """Who acts, from where, under which settings; ``attempted`` hears every attempt."""

    session: Session
    settings: Settings
    principal: Principal
    source_address: str | None
    via: str  # "console" | "api"
    attempted: Callable[[str, str | None], None] = field(default=_no_hook)

    @property
    def live(self) -> bool:
        """Whether Paydesk runs with live Stripe keys (stricter roles for some actions)."""
        return self.settings.key_mode == "live"

    def authorize(self, permission: Permission) -> None:
        """``PermissionDenied`` unless the principal's role holds ``permission``."""
        roles.check(self.principal.role, permission, live=self.live)

    def may(self, action: Action) -> bool:
        """Whether the principal may perform ``action`` (to offer it, or not)."""
        return roles.can(self.principal.role, action.permission, live=self.live)

    def begin(self, action: Action, target: str | None) -> None:
        """Name the attempt (its failure gets audited), then check its permission."""
        self.attempted(action.name, target)
        self.authorize(action.permission)

    def record(
        self,
        action: str,
        target: str | None,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Append the success entry of an action (in the caller's unit of work)."""
        audit.record(
            self.session,
            self.settings,
            actor=self.principal.actor,
            action=action,
            target=target,
            before=before,
            after={**(after or {}), "via": self.via},
            source_address=self.source_address,
        )


@dataclass(frozen=True)
class Done(Generic[T]):
    """What an action's work produced: its result and what the audit entry says."""

    result: T
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    target: str | None = None  # when known only afterwards (a created object's id)


def perform(ctx: Context, action: Action, target: str | None, work: Callable[[], Done[T]]) -> T:
    """Begin ``action`` on ``target``, run ``work``, audit its success; return its result."""
    ctx.begin(action, target)
    done = work()
    ctx.record(
        action.name,
        done.target if done.target is not None else target,
        before=done.before,
        after=done.after,
    )
    return done.result
