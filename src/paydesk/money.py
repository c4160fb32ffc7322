"""Money: integer minor units plus an ISO currency code. Never floats.

Stripe expresses amounts in the currency's smallest unit: cents for USD, whole
yen for JPY (zero-decimal), thousandths for KWD (three-decimal, last digit 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from paydesk.errors import InvalidInput

ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

# Stripe's minimum charge amounts, in minor units, for the currencies it lists.
MINIMUM_CHARGE = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50,
    "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50,
    "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200,
    "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip

# Upper bound Stripe accepts for one charge (8 digits in minor units for most currencies).
MAXIMUM_AMOUNT = 99_999_999


def decimals(currency: str) -> int:
    """How many minor-unit digits ``currency`` has (0, 2 or 3)."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


@dataclass(frozen=True)
class Money:
    """An amount in minor units of ``currency`` (lower-case ISO 4217)."""

    amount: int
    currency: str

    def format(self) -> str:
        """``12.34 USD``, ``1500 JPY``, ``1.230 KWD`` — exact, from integers."""
        places = decimals(self.currency)
        sign = "-" if self.amount < 0 else ""
        whole, fraction = divmod(abs(self.amount), 10**places)
        text = f"{whole}.{fraction:0{places}d}" if places else str(whole)
        return f"{sign}{text} {self.currency.upper()}"


def validate_charge_amount(amount: int, currency: str, field: str = "amount") -> None:
    """Refuse amounts Stripe would refuse, naming ``field``."""
    code = currency.lower()
    if amount <= 0:
        raise InvalidInput("The amount must be a positive integer in minor units.", field=field)
    if amount > MAXIMUM_AMOUNT:
        raise InvalidInput(f"The amount must be at most {MAXIMUM_AMOUNT}.", field=field)
    minimum = MINIMUM_CHARGE.get(code)
    if minimum is not None and amount < minimum:
        raise InvalidInput(
            f"The amount must be at least {Money(minimum, code).format()}.",
            code="amount_too_small",
            field=field,
        )
    if code in THREE_DECIMAL and amount % 10:
        raise InvalidInput(
            f"{code.upper()} amounts must end in 0 (Stripe rounds to two decimals).", field=field
        )
