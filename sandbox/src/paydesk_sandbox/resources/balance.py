"""Balance transactions, ``/v1/balance`` and ``/v1/account``.

Every captured charge, refund and dispute movement books a balance transaction, so
``expand[]=latest_charge.balance_transaction`` shows fees and net amounts, and
``GET /v1/balance`` adds them up. ``GET /v1/account`` lets key checks (``paydesk
doctor``) work offline.
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.listing import created_filter, matching, paginate
from paydesk_sandbox.money import ZERO_DECIMAL
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import SandboxState

Json = dict[str, Any]
router = Router()
ACCOUNT_ID = "acct_1PaydeskSandbox0"


def processing_fee(amount: int, currency: str) -> int:
    """Stripe's standard card fee, 2.9% + 30 (in the currency's minor unit)."""
    fixed = 0 if currency in ZERO_DECIMAL else 30
    return round(amount * 0.029) + fixed


def book(
    state: SandboxState,
    *,
    amount: int,
    currency: str,
    source: str,
    kind: str,
    description: str | None,
    fee: int = 0,
    fee_description: str = "Stripe processing fees",
) -> Json:
    """Store a balance transaction (``kind``: charge, refund, adjustment, ...)."""
    now = state.now()
    txn: Json = {
        "id": state.new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now + 2 * 86400,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": fee_description,
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        ),
        "net": amount - fee,
        "reporting_category": {"charge": "charge", "refund": "refund"}.get(kind, "dispute"),
        "source": source,
        "status": "pending",
        "type": kind,
    }
    return state.add(txn)


def book_charge(state: SandboxState, charge: Json) -> str:
    """The balance transaction of a captured charge; returns its id."""
    amount = charge["amount_captured"]
    currency = charge["currency"]
    txn = book(
        state,
        amount=amount,
        currency=currency,
        source=charge["id"],
        kind="charge",
        description=charge["description"],
        fee=processing_fee(amount, currency),
    )
    return str(txn["id"])


@router.get("/v1/balance_transactions/{id}")
def retrieve_balance_transaction(ctx: Ctx) -> Json:
    """One balance transaction."""
    return ctx.state.get("balance_transaction", ctx.path["id"], label="balance transaction")


@router.list("/v1/balance_transactions", params={"source", "type", "currency", "created", "payout"})
def list_balance_transactions(ctx: Ctx) -> Json:
    """Newest first; filters ``source``, ``type``, ``currency``, ``created``."""
    items = matching(
        ctx, ctx.state.iter_newest_first("balance_transaction"), "source", "type", "currency"
    )
    return paginate(ctx, created_filter(ctx, items))


@router.get("/v1/balance")
def retrieve_balance(ctx: Ctx) -> Json:
    """Sums of balance transactions per currency (pending until ``available_on``)."""
    now = ctx.now
    available: dict[str, int] = {}
    pending: dict[str, int] = {}
    for txn in ctx.state.store("balance_transaction").values():
        bucket = available if txn["available_on"] <= now else pending
        bucket[txn["currency"]] = bucket.get(txn["currency"], 0) + txn["net"]
    currencies = sorted(available.keys() | pending.keys()) or ["usd"]

    def rows(sums: dict[str, int]) -> list[Json]:
        return [
            {"amount": sums.get(c, 0), "currency": c, "source_types": {"card": sums.get(c, 0)}}
            for c in currencies
        ]

    return {
        "object": "balance",
        "available": rows(available),
        "connect_reserved": [{"amount": 0, "currency": c} for c in currencies],
        "livemode": False,
        "pending": rows(pending),
    }


@router.get("/v1/account")
def retrieve_account(ctx: Ctx) -> Json:
    """The sandbox's own (test mode) account."""
    return {
        "id": ACCOUNT_ID,
        "object": "account",
        "business_profile": {
            **dict.fromkeys(
                (
                    "annual_revenue",
                    "estimated_worker_count",
                    "mcc",
                    "minority_owned_business_designation",
                    "product_description",
                    "support_address",
                    "support_email",
                    "support_phone",
                    "support_url",
                    "url",
                )
            ),
            "name": "Paydesk Sandbox",
        },
        "business_type": "company",
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "account"},
        "country": "US",
        "created": 1700000000,
        "default_currency": "usd",
        "details_submitted": True,
        "email": "sandbox@paydesk.invalid",
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/accounts/{ACCOUNT_ID}/external_accounts",
        },
        "future_requirements": None,
        "metadata": {},
        "payouts_enabled": True,
        "requirements": None,
        "settings": None,
        "tos_acceptance": {"date": 1700000000, "ip": None, "user_agent": None},
        "type": "standard",
    }
