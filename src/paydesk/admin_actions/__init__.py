"""Audited admin actions, one path for the console and the Admin API alike.

Every mutation an admin makes on Stripe-backed objects is an ``Action`` (audit
name + the one permission it needs) run by ``perform``: attempt named (so its
failure is audited once), permission checked, domain work done, success audited
in the same unit of work. The web layers build a ``Context`` and call these
functions; neither checks permissions nor writes audit entries of its own for
them. (Access management — admins, tokens, passwords — is audited by
``paydesk.auth`` itself.)
"""

from __future__ import annotations

from paydesk.admin_actions import disputes, operations, payments, subscriptions
from paydesk.admin_actions.core import Action, Context, Done, perform

__all__ = [
    "ACTIONS",
    "Action",
    "Context",
    "Done",
    "disputes",
    "operations",
    "payments",
    "perform",
    "subscriptions",
]

ACTIONS: tuple[Action, ...] = (
    payments.CREATE,
    payments.CAPTURE,
    payments.CANCEL,
    payments.REFRESH,
    payments.REFUND,
    payments.PAY_LINK,
    subscriptions.CREATE,
    subscriptions.CHANGE_TIER,
    subscriptions.CANCEL,
    subscriptions.RESUME,
    operations.ENSURE_CUSTOMER,
    operations.REPLAY_EVENT,
    disputes.EVIDENCE,
    disputes.CLOSE,
)
