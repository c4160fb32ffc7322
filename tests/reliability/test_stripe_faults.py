"""Stripe faults: admin operations through the Admin API while Stripe misbehaves.

The sandbox fails 30 % of ``/v1`` requests, mixed kinds: 500, 429 with Retry-After,
timeouts (the answer held past Paydesk's 1 s Stripe timeout) and connections dropped
after the operation was applied; then, briefly, 70 % (an outage that outlasts the
SDK's retries, so some operations are reported failed). An admin performs payments,
refunds (full and partial), tier changes (upgrades and downgrades) and cancellations
over real HTTP, each with an Idempotency-Key. Each must succeed or answer a clear, structured
``stripe_*`` 503 and leave the mirror untouched. Then, with faults off, the admin
repeats every failed operation once with the same key; reading the sandbox's own
state afterwards proves one object per operation (no duplicate charge, refund,
subscription or upgrade invoice) and that the mirror (read through the Admin API)
agrees with Stripe.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from paydesk.billing.refunds import OPERATION_METADATA
from paydesk.db.migrate import upgrade_to_head
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.web import create_app
from tests.reliability.conftest import Scale
from tests.support.admins import admin_token
from tests.support.databases import throwaway_database
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack, running_stack

SHARE = 0.3
# Then a short outage: at 0.7 a call fails all 4 attempts (first try + the SDK's 3
# retries) about 1 time in 4, so some operations are reported failed and repeated.
BURST_SHARE = 0.7
STRIPE_TIMEOUT = "1"  # seconds per attempt (PAYDESK_STRIPE_TIMEOUT_SECONDS)
HOLD_SECONDS = "3"  # a timeout fault holds the answer longer than that
CLEAR_CODES = {"stripe_unreachable", "stripe_error", "stripe_rate_limited"}
LABEL = "reliability-stripe-faults"

Json = dict[str, Any]


@dataclass
class Operation:
    """One admin action, its Idempotency-Key and what came of it."""

    number: int
    kind: str  # payment | refund | upgrade | downgrade | cancel
    target: str  # customer (payment), payment (refund) or subscription id
    path: str
    body: Json
    key: str
    first: int = 0  # HTTP status of the first try
    error: Json = field(default_factory=dict)
    final: int = 0  # status after the admin's one repeat (first if it succeeded)
    result: Json = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{LABEL}-{self.number}"


@dataclass
class Model:
    """What the admin expects Stripe to hold, from the answers they got."""

    payments: dict[str, int] = field(default_factory=dict)  # id -> amount
    refunded: dict[str, int] = field(default_factory=dict)  # payment id -> refunded
    tiers: dict[str, str] = field(default_factory=dict)  # subscription id -> tier
    canceled: set[str] = field(default_factory=set)
    upgrades: dict[str, int] = field(default_factory=dict)  # subscription -> upgrades applied
    blocked: set[str] = field(default_factory=set)  # targets waiting for a repeat

    def apply(self, op: Operation) -> None:
        if op.kind == "payment":
            payment = op.result["payment"]
            assert payment["status"] == "succeeded", op.result
            self.payments[payment["id"]] = payment["amount"]
            self.refunded[payment["id"]] = 0
        elif op.kind == "refund":
            self.refunded[op.target] += op.result["amount"]
        elif op.kind in ("upgrade", "downgrade"):
            self.tiers[op.target] = op.body["tier"]
            if op.kind == "upgrade":
                self.upgrades[op.target] = self.upgrades.get(op.target, 0) + 1
        else:
            self.canceled.add(op.target)


def test_admin_operations_apply_exactly_once(
    tmp_path: Path, scale: Scale, figures: dict[str, Any]
) -> None:
    started = time.monotonic()
    phases = [(SHARE, scale.pick(24, 200)), (BURST_SHARE, scale.pick(8, 20))]
    customers = scale.pick(6, 30)
    with throwaway_database("sqlite", tmp_path) as url:
        upgrade_to_head(url)
        extra = {"PAYDESK_STRIPE_TIMEOUT_SECONDS": STRIPE_TIMEOUT}
        with (
            running_stack(url, extra) as stack,
            serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base,
            httpx.Client(
                base_url=base,
                timeout=180,
                headers={"Authorization": f"Bearer {admin_token(stack.sessions, stack.settings)}"},
            ) as api,
        ):
            model = Model()
            subscriptions = _set_up(api, model, customers)
            rng = random.Random(20261127)
            done: list[Operation] = []
            for share, count in phases:
                _faults(stack, "PUT", share=str(share), seed="8", hold_seconds=HOLD_SECONDS)
                _run(api, model, rng, subscriptions, done, len(done) + count)
            injected = _faults(stack, "DELETE")
            unclear = [op for op in done if op.first >= 300 and not _is_clear(op)]
            half_applied = [op for op in done if op.first >= 300 and _mirror_changed(api, op)]
            failed = [op for op in done if op.first >= 300]
            applied_anyway = sum(1 for op in failed if _made_at_stripe(stack, op))
            for op in failed:  # the admin repeats each failed action once, same key
                _send(api, op, retry=True)
                if op.final < 300:
                    model.blocked.discard(op.target)
                    model.apply(op)
            duplicates, lost = _check_stripe(stack, model, done)
            mismatches = _check_mirror(api, stack, model, done)

    figures.update(
        operations=len(done),
        faults_injected=injected["injected"],
        **{f"faults_{kind}": n for kind, n in injected["counts"].items()},
        succeeded=len(done) - len(failed),
        reported_failed=len(failed),
        failed_but_applied=applied_anyway,
        retried_ok=sum(1 for op in failed if op.final < 300),
        duplicates=len(duplicates),
        lost=len(lost),
        mismatches=len(mismatches),
        seconds=round(time.monotonic() - started, 1),
    )
    assert len(done) == sum(count for _, count in phases)
    assert injected["injected"] > 0, "the fault mode injected nothing"
    assert not unclear, [(op.kind, op.first, op.error) for op in unclear]
    assert not half_applied, [(op.kind, op.target) for op in half_applied]
    assert all(op.final < 300 for op in done), [
        (op.kind, op.final, op.result) for op in done if op.final >= 300
    ]
    assert not duplicates, duplicates
    assert not lost, lost
    assert not mismatches, mismatches


# -- the run -------------------------------------------------------------------------------


def _faults(stack: Stack, method: str, **data: str) -> Json:
    response = httpx.request(method, f"{stack.sandbox.url}/_sandbox/faults", data=data or None)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def _set_up(api: httpx.Client, model: Model, customers: int) -> dict[str, str]:
    """Customers, each on Premium with a card (faults off). Subscription id -> customer."""
    subscriptions: dict[str, str] = {}
    for i in range(customers):
        customer = api.post(
            "/api/admin/customers", json={"user_id": f"{LABEL}-{i}", "email": f"sf{i}@example.com"}
        )
        assert customer.status_code == 200, customer.text
        created = api.post(
            "/api/admin/subscriptions",
            json={
                "customer": customer.json()["id"],
                "tier": "premium",
                "payment_method": "pm_card_visa",
            },
            headers={"Idempotency-Key": f"{LABEL}-subscribe-{i}"},
        )
        assert created.status_code == 201, created.text
        sub = created.json()["subscription"]
        assert sub["status"] == "active", sub
        subscriptions[sub["id"]] = customer.json()["id"]
        model.tiers[sub["id"]] = "premium"
    return subscriptions


def _run(
    api: httpx.Client,
    model: Model,
    rng: random.Random,
    subscriptions: dict[str, str],
    done: list[Operation],
    count: int,
) -> None:
    """Perform operations until ``done`` holds ``count``."""
    customers = sorted(set(subscriptions.values()))
    while len(done) < count:
        number = len(done)
        choice = rng.choices(["payment", "refund", "tier", "cancel"], [3, 3, 3, 1])[0]
        op = _plan(rng, model, choice, number, customers, sorted(subscriptions))
        if op is None:
            continue
        _send(api, op)
        if op.first < 300:
            model.apply(op)
        elif op.kind != "payment":
            model.blocked.add(op.target)  # the admin repeats it before touching it again
        done.append(op)


def _plan(
    rng: random.Random,
    model: Model,
    choice: str,
    number: int,
    customers: list[str],
    subscriptions: list[str],
) -> Operation | None:
    key = f"{LABEL}-op-{number}"
    if choice == "payment":
        customer = rng.choice(customers)
        body: Json = {
            "customer": customer,
            "amount": rng.randint(500, 20_000),
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "description": f"{LABEL}-{number}",
        }
        return Operation(number, "payment", customer, "/api/admin/payments", body, key)
    if choice == "refund":
        refundable = [
            pid
            for pid, amount in model.payments.items()
            if amount > model.refunded[pid] and pid not in model.blocked
        ]
        if not refundable:
            return None
        pid = rng.choice(refundable)
        left = model.payments[pid] - model.refunded[pid]
        refund: Json = {} if left < 200 or rng.random() < 0.4 else {"amount": left // 2}
        path = f"/api/admin/payments/{pid}/refunds"
        return Operation(number, "refund", pid, path, refund, key)
    live = [s for s in subscriptions if s not in model.canceled and s not in model.blocked]
    if not live:
        return None
    sid = rng.choice(live)
    if choice == "tier":
        upgrade = model.tiers[sid] == "premium"
        body = {"tier": "enterprise" if upgrade else "premium"}
        kind = "upgrade" if upgrade else "downgrade"
        return Operation(number, kind, sid, f"/api/admin/subscriptions/{sid}/tier", body, key)
    if len(live) <= 2:
        return None  # keep some subscriptions for tier changes
    path = f"/api/admin/subscriptions/{sid}/cancel"
    return Operation(number, "cancel", sid, path, {"at_period_end": False}, key)


def _send(api: httpx.Client, op: Operation, *, retry: bool = False) -> None:
    response = api.post(op.path, json=op.body, headers={"Idempotency-Key": op.key})
    body: Json = response.json() if response.content else {}
    if not retry:
        op.first = response.status_code
        op.error = body.get("error", {}) if response.status_code >= 300 else {}
    op.final = response.status_code
    op.result = body


def _is_clear(op: Operation) -> bool:
    """A 503 naming Stripe, with a message a person can act on and Stripe's request id."""
    return (
        op.first == 503
        and op.error.get("code") in CLEAR_CODES
        and len(str(op.error.get("message", ""))) > 20
    )


def _mirror_changed(api: httpx.Client, op: Operation) -> bool:
    """Did a failed operation leave a local change behind?"""
    if op.kind == "payment":
        listed = api.get("/api/admin/payments", params={"customer": op.target, "limit": 100})
        return any(p["description"] == op.label for p in listed.json()["data"])
    if op.kind == "refund":
        payment = api.get(f"/api/admin/payments/{op.target}").json()
        refunds = api.get("/api/admin/refunds", params={"payment": op.target, "limit": 100})
        return bool(sum(r["amount"] for r in refunds.json()["data"]) != payment["amount_refunded"])
    sub = api.get(f"/api/admin/subscriptions/{op.target}").json()
    if op.kind == "cancel":
        return bool(sub["status"] == "canceled")
    return bool(sub["tier"] == op.body["tier"])


# -- the checks against Stripe's own state ---------------------------------------------------


def _objects(stack: Stack, kind: str) -> list[Json]:
    return list(stack.sandbox.state.objects.get(kind, {}).values())


def _our_intents(stack: Stack) -> list[Json]:
    """PaymentIntents made by the run's payment operations (not subscription invoices)."""
    intents = _objects(stack, "payment_intent")
    return [pi for pi in intents if str(pi.get("description") or "").startswith(LABEL)]


def _refunds_made_by(stack: Stack, op: Operation) -> list[str]:
    """Refunds at Stripe made by refund operation ``op`` (Paydesk tags its operation key)."""
    key = operation_key("refund", op.target, op.key)
    refunds = _objects(stack, "refund")
    return [r["id"] for r in refunds if (r.get("metadata") or {}).get(OPERATION_METADATA) == key]


def _made_at_stripe(stack: Stack, op: Operation) -> bool:
    """Whether Stripe applied a failed ``op`` anyway (its answer was lost)."""
    if op.kind == "payment":
        return any(pi.get("description") == op.label for pi in _objects(stack, "payment_intent"))
    if op.kind == "refund":
        return bool(_refunds_made_by(stack, op))
    sub = stack.sandbox.state.objects["subscription"][op.target]
    if op.kind == "cancel":
        return bool(sub["status"] == "canceled")
    return bool(sub.get("metadata", {}).get("paydesk_tier") == op.body["tier"])


def _price_of(sub: Json) -> str:
    price = sub["items"]["data"][0]["price"]
    return str(price["id"] if isinstance(price, dict) else price)


def _check_stripe(stack: Stack, model: Model, done: list[Operation]) -> tuple[list[Any], list[Any]]:
    """(duplicates, lost): per operation, how many objects Stripe made for it."""
    duplicates: list[Any] = []
    lost: list[Any] = []
    intents = _our_intents(stack)
    refunds = _objects(stack, "refund")
    for op in done:
        if op.kind == "payment":
            made = [pi["id"] for pi in intents if pi["description"] == op.label]
        elif op.kind == "refund":
            made = _refunds_made_by(stack, op)
        else:
            continue
        if len(made) > 1:
            duplicates.append((op.kind, op.number, made))
        elif not made:
            lost.append((op.kind, op.number))
    if len(intents) != sum(1 for op in done if op.kind == "payment"):
        duplicates.append(("payment_intents", len(intents)))
    if len(refunds) != sum(1 for op in done if op.kind == "refund"):
        duplicates.append(("refunds", len(refunds)))
    charges = {c["id"]: c for c in _objects(stack, "charge")}
    for pi in intents:
        refunded = charges[pi["latest_charge"]]["amount_refunded"]
        if refunded != model.refunded.get(pi["id"]):
            duplicates.append(("amount_refunded", pi["id"], refunded, model.refunded.get(pi["id"])))
    subs = _objects(stack, "subscription")
    per_customer: dict[str, int] = {}
    for sub in subs:
        per_customer[sub["customer"]] = per_customer.get(sub["customer"], 0) + 1
    duplicates += [("subscriptions", c, n) for c, n in per_customer.items() if n != 1]
    invoices = _objects(stack, "invoice")
    for sub in subs:
        sid = sub["id"]
        expected_status = "canceled" if sid in model.canceled else "active"
        if sub["status"] != expected_status:
            lost.append(("subscription_status", sid, sub["status"], expected_status))
        tier = sub.get("metadata", {}).get("paydesk_tier")
        if tier != model.tiers[sid]:
            lost.append(("tier", sid, tier, model.tiers[sid]))
        count = sum(
            1 for inv in invoices if inv.get("subscription") == sid or _invoice_sub(inv) == sid
        )
        if count != 1 + model.upgrades.get(sid, 0):
            duplicates.append(("invoices", sid, count, 1 + model.upgrades.get(sid, 0)))
    return duplicates, lost


def _invoice_sub(invoice: Json) -> str | None:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    sub = details.get("subscription")
    return str(sub) if sub else None


def _check_mirror(
    api: httpx.Client, stack: Stack, model: Model, done: list[Operation]
) -> list[Any]:
    """Differences between the mirror (read through the Admin API) and Stripe's state."""
    mismatches: list[Any] = []
    charges = {c["id"]: c for c in _objects(stack, "charge")}
    refunds = _objects(stack, "refund")
    for pi in _our_intents(stack):
        mirrored = api.get(f"/api/admin/payments/{pi['id']}")
        if mirrored.status_code != 200:
            mismatches.append(("payment_missing", pi["id"]))
            continue
        row = mirrored.json()
        at_stripe = (pi["status"], pi["amount"], charges[pi["latest_charge"]]["amount_refunded"])
        if (row["status"], row["amount"], row["amount_refunded"]) != at_stripe:
            mismatches.append(("payment", pi["id"], row, at_stripe))
        listed = api.get("/api/admin/refunds", params={"payment": pi["id"], "limit": 100}).json()
        mine = sorted((r["id"], r["amount"]) for r in listed["data"])
        theirs = sorted(
            (r["id"], r["amount"]) for r in refunds if r.get("payment_intent") == pi["id"]
        )
        if mine != theirs:
            mismatches.append(("refunds", pi["id"], mine, theirs))
    for sub in _objects(stack, "subscription"):
        row = api.get(f"/api/admin/subscriptions/{sub['id']}").json()
        at_stripe = (sub["status"], _price_of(sub), sub.get("metadata", {}).get("paydesk_tier"))
        if (row["status"], row["price_id"], row["tier"]) != at_stripe:
            mismatches.append(("subscription", sub["id"], row, at_stripe))
    return mismatches
