"""What paying, or failing to pay, an invoice does to its subscription.

Used by ``invoicing`` (payments settle or exhaust their retries) and by ``lifecycle``
(cancellations), so it sits below both and imports neither.
"""

from __future__ import annotations

from paydesk_sandbox.billing.common import changed, snapshot
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.state import Json, SandboxState


def subscription_of(state: SandboxState, invoice: Json) -> Json | None:
    """The subscription an invoice belongs to (through ``parent``), if any."""
    parent = invoice["parent"]
    if not parent or not parent.get("subscription_details"):
        return None
    return state.store("subscription").get(parent["subscription_details"]["subscription"])


def end_after_retries(state: SandboxState, subscription: Json, now: int, end_state: str) -> None:
    """Every retry of the subscription's invoice failed: mark it unpaid or cancel it."""
    if end_state == "unpaid":
        if subscription["status"] != "unpaid":
            before = snapshot(subscription)
            subscription["status"] = "unpaid"
            emit(
                state, "customer.subscription.updated", subscription, changed(before, subscription)
            )
    else:
        end_subscription(state, subscription, now, reason="payment_failed")


def end_subscription(state: SandboxState, subscription: Json, now: int, *, reason: str) -> None:
    """``canceled`` with ``customer.subscription.deleted``; its open and draft invoices
    stay as they are but are no longer retried or finalized."""
    for invoice in state.store("invoice").values():
        if subscription_of(state, invoice) is subscription and invoice["status"] in (
            "open",
            "draft",
        ):
            invoice["next_payment_attempt"] = None
            invoice["automatically_finalizes_at"] = None
    before = snapshot(subscription)
    subscription["status"] = "canceled"
    subscription["canceled_at"] = subscription["canceled_at"] or now
    subscription["ended_at"] = now
    subscription["cancellation_details"]["reason"] = reason
    emit(state, "customer.subscription.deleted", subscription, changed(before, subscription))


def apply_pending_update(state: SandboxState, subscription: Json) -> None:
    """The pending update's invoice was paid: the change takes effect."""
    update = subscription["pending_update"]
    state.private_of(subscription["id"]).pop("pending_invoice", None)
    if update is None:
        return
    before = snapshot(subscription)
    subscription["items"]["data"] = update["subscription_items"]
    subscription["pending_update"] = None
    previous = changed(before, subscription)
    emit(state, "customer.subscription.pending_update_applied", subscription, previous)
    emit(state, "customer.subscription.updated", subscription, previous)
