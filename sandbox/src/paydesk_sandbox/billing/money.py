"""Amounts as people read them ("$9.99"), for invoice line descriptions."""

from __future__ import annotations

from paydesk_sandbox.money import ZERO_DECIMAL

_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_amount(amount: int, currency: str) -> str:
    """``999, "usd"`` → ``$9.99``; integer arithmetic only."""
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get(currency, currency.upper() + " ")
    if currency in ZERO_DECIMAL:
        return f"{sign}{symbol}{abs(amount)}"
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{symbol}{whole}.{cents:02d}"
