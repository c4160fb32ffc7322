"""What happens between a test clock's old and new frozen time.

Advancing runs every due billing action of the clock's customers in time order —
renewals, trial ends, cancellations at period end, draft finalization and payment
about an hour after a renewal, payment retries, expiry of unpaid first invoices —
with the clock set to each action's moment, so objects and events carry the times
they would have had in Stripe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from paydesk_sandbox.billing import invoicing, lifecycle, periods, preview
from paydesk_sandbox.billing.common import snapshot
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.billing.subscription_status import subscription_of
from paydesk_sandbox.errors import StripeError
from paydesk_sandbox.params import Params
from paydesk_sandbox.state import Json, SandboxState

MAX_STEPS = 10_000  # guards against a bug looping forever inside one request
UPCOMING_NOTICE = 3 * 86_400  # Stripe's default "upcoming renewal" notice: three days


@dataclass(frozen=True)
class Action:
    """One due step: when, in which order among equal times, and what to run."""

    at: int
    rank: int
    target_id: str
    run: Callable[[SandboxState, Json, int], None]
    kind: str


def _customers_on(state: SandboxState, clock_id: str) -> set[str]:
    return {c["id"] for c in state.store("customer").values() if c.get("test_clock") == clock_id}


def _subscription_actions(state: SandboxState, subscription: Json) -> list[Action]:
    sid = subscription["id"]
    status = subscription["status"]
    if status == "incomplete":
        return [Action(subscription["created"] + lifecycle.INCOMPLETE_EXPIRY, 0, sid,
                       lifecycle.expire_incomplete, "expire")]  # fmt: skip
    if status not in lifecycle.ACTIVE_LIKE:
        return []
    actions: list[Action] = []
    pending = subscription["pending_update"]
    if pending is not None:
        actions.append(
            Action(pending["expires_at"], 0, sid, lifecycle.expire_pending_update, "pending")
        )
    period_end = lifecycle.current_period(subscription)[1]
    cancel_at = subscription["cancel_at"]
    if cancel_at is not None and cancel_at <= period_end:
        actions.append(Action(cancel_at, 0, sid, _cancel_scheduled, "cancel"))
        return actions
    if status == "trialing" and subscription["trial_end"] is not None:
        warned = state.private_of(sid).get("trial_warned")
        if not warned:
            notice = subscription["trial_end"] - lifecycle.TRIAL_WILL_END_NOTICE
            actions.append(Action(notice, 1, sid, lifecycle.maybe_warn_trial_end, "trial_notice"))
        actions.append(Action(subscription["trial_end"], 2, sid, lifecycle.end_trial, "trial_end"))
        return actions
    notice = period_end - UPCOMING_NOTICE
    if state.private_of(sid).get("upcoming_sent") != period_end and not subscription["cancel_at"]:
        actions.append(Action(notice, 1, sid, _announce_upcoming, "upcoming"))
    actions.append(Action(period_end, 3, sid, _renew, "renew"))
    return actions


def _announce_upcoming(state: SandboxState, subscription: Json, now: int) -> None:
    """``invoice.upcoming``: Stripe's heads-up with a preview of the renewal invoice."""
    period_end = lifecycle.current_period(subscription)[1]
    state.private_of(subscription["id"])["upcoming_sent"] = period_end
    if subscription["pause_collection"] is not None or subscription["status"] == "unpaid":
        return
    try:
        upcoming = preview.build(state, subscription["customer"], subscription, Params({}))
    except StripeError:
        return  # nothing upcoming (e.g. the subscription ends at the period end)
    emit(state, "invoice.upcoming", upcoming)


def _cancel_scheduled(state: SandboxState, subscription: Json, now: int) -> None:
    lifecycle.cancel(state, subscription, now, reason="cancellation_requested")


def _renew(state: SandboxState, subscription: Json, now: int) -> None:
    lifecycle.renew(state, subscription, now)


def _invoice_actions(invoice: Json) -> list[Action]:
    iid = invoice["id"]
    if invoice["status"] == "draft" and invoice["automatically_finalizes_at"] is not None:
        return [Action(invoice["automatically_finalizes_at"], 4, iid, _finalize, "finalize")]
    if (
        invoice["status"] == "open"
        and invoice["next_payment_attempt"] is not None
        and invoice["collection_method"] == "charge_automatically"
    ):
        return [Action(invoice["next_payment_attempt"], 5, iid, _retry, "retry")]
    return []


def _finalize(state: SandboxState, invoice: Json, now: int) -> None:
    if invoice["billing_reason"] == "manual" and subscription_of(state, invoice) is None:
        invoicing.finalize(state, invoice, now)
        if (
            invoice["status"] == "open"
            and invoice["collection_method"] == "charge_automatically"
            and invoicing.payment_method_for(state, invoice, None) is not None
        ):
            invoicing.attempt_payment(state, invoice, now)
        return
    lifecycle.finalize_and_collect(state, invoice, now)


def _retry(state: SandboxState, invoice: Json, now: int) -> None:
    subscription = subscription_of(state, invoice)
    if subscription is not None and subscription["status"] in lifecycle.ENDED:
        invoice["next_payment_attempt"] = None
        return
    if invoicing.payment_method_for(state, invoice, None) is None:
        before = snapshot(invoice)
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        invoicing.record_failure(state, invoice, now, before)
        return
    invoicing.attempt_payment(state, invoice, now)


def due_actions(state: SandboxState, customers: set[str], until: int) -> list[Action]:
    """Every action of ``customers`` due at or before ``until``, earliest first."""
    actions: list[Action] = []
    for subscription in state.store("subscription").values():
        if subscription["customer"] in customers:
            actions.extend(_subscription_actions(state, subscription))
    for invoice in state.store("invoice").values():
        if invoice["customer"] in customers:
            actions.extend(_invoice_actions(invoice))
    due = [a for a in actions if a.at <= until]
    due.sort(key=lambda a: (a.at, a.rank))
    return due


def _run(state: SandboxState, action: Action, moment: int) -> None:
    store = "subscription" if action.target_id.startswith("sub_") else "invoice"
    action.run(state, state.store(store)[action.target_id], moment)


def advance(state: SandboxState, clock: Json, target: int) -> None:
    """Run everything due up to ``target``, then leave the clock at ``target``."""
    customers = _customers_on(state, clock["id"])
    for _ in range(MAX_STEPS):
        due = due_actions(state, customers, target)
        if not due:
            break
        moment = max(due[0].at, int(clock["frozen_time"]))
        clock["frozen_time"] = moment
        _run(state, due[0], moment)
    clock["frozen_time"] = target


def catch_up_real_time(state: SandboxState) -> int:
    """Run what is due for customers without a test clock (they follow the sandbox
    clock, which ``POST /_sandbox/clock`` can shift). Returns the number of actions."""
    customers = {c["id"] for c in state.store("customer").values() if not c.get("test_clock")}
    until = state.now()
    done = 0
    for done in range(MAX_STEPS):
        due = due_actions(state, customers, until)
        if not due:
            return done
        _run(state, due[0], due[0].at)
    return done


def shortest_interval_limit(state: SandboxState, clock_id: str, frozen_time: int) -> int:
    """How far the clock may go: two intervals of its shortest subscription (else 2 years)."""
    customers = _customers_on(state, clock_id)
    limits = [
        periods.boundary(frozen_time, *lifecycle.billing_interval(s), 2)
        for s in state.store("subscription").values()
        if s["customer"] in customers and s["status"] not in lifecycle.ENDED
    ]
    return min(limits) if limits else periods.boundary(frozen_time, "year", 2, 1)
