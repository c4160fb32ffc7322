"""Currencies: zero-decimal ones, minimum and maximum charge amounts (reference §9)."""

from __future__ import annotations

from paydesk_sandbox.errors import invalid_request

# Stripe's currency facts. The sandbox is its own distribution and imports nothing
# of Paydesk; tests/sandbox/test_money.py keeps these equal to paydesk.money's.
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

# Minimum charge in the currency's minor unit (whole units for zero-decimal ones).
MINIMUMS: dict[str, int] = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "jpy": 50,
    "aud": 50,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "inr": 50,
    "nzd": 50,
    "sgd": 50,
    "aed": 200,
    "bgn": 100,
    "czk": 1500,
    "dkk": 250,
    "hkd": 400,
    "huf": 17500,
    "mxn": 1000,
    "myr": 200,
    "nok": 300,
    "sek": 300,
    "pln": 200,
    "ron": 200,
    "thb": 1000,
}
KNOWN = (
    frozenset(MINIMUMS)
    | ZERO_DECIMAL
    | THREE_DECIMAL
    | frozenset(
        [
            "afn",
            "all",
            "amd",
            "ang",
            "aoa",
            "ars",
            "awg",
            "azn",
            "bam",
            "bbd",
            "bdt",
            "bmd",
            "bnd",
            "bob",
            "bsd",
            "bwp",
            "byn",
            "bzd",
            "cdf",
            "cny",
            "cop",
            "crc",
            "cve",
            "dop",
            "dzd",
            "egp",
            "etb",
            "fjd",
            "fkp",
            "gel",
            "gip",
            "gmd",
            "gtq",
            "gyd",
            "hnl",
            "htg",
            "idr",
            "ils",
            "isk",
            "jmd",
            "kes",
            "kgs",
            "khr",
            "kyd",
            "kzt",
            "lak",
            "lbp",
            "lkr",
            "lrd",
            "lsl",
            "mad",
            "mdl",
            "mkd",
            "mmk",
            "mnt",
            "mop",
            "mur",
            "mvr",
            "mwk",
            "mzn",
            "nad",
            "ngn",
            "nio",
            "npr",
            "pab",
            "pen",
            "pgk",
            "php",
            "pkr",
            "qar",
            "rsd",
            "rub",
            "sar",
            "sbd",
            "scr",
            "shp",
            "sle",
            "sos",
            "srd",
            "std",
            "szl",
            "tjs",
            "top",
            "try",
            "ttd",
            "twd",
            "tzs",
            "uah",
            "uyu",
            "uzs",
            "wst",
            "xcd",
            "yer",
            "zar",
            "zmw",
        ]
    )
)
MAX_AMOUNT = 99_999_999


def check_currency(currency: str, param: str = "currency") -> str:
    """The lower-cased currency, or 400 for one Stripe does not know."""
    code = currency.lower()
    if code not in KNOWN:
        raise invalid_request(f"Invalid currency: {currency}.", param=param)
    return code


def format_amount(amount: int, currency: str) -> str:
    """``$0.50`` / ``¥50`` style text used in Stripe's amount messages."""
    symbol = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}.get(currency, "")
    if currency in ZERO_DECIMAL:
        return f"{symbol}{amount:,}"
    if currency in THREE_DECIMAL:
        return f"{symbol}{amount / 1000:,.3f}"
    return f"{symbol}{amount / 100:,.2f}"


def check_amount(amount: int, currency: str, param: str = "amount") -> None:
    """400 ``amount_too_small`` / ``amount_too_large`` for a charge amount."""
    minimum = MINIMUMS.get(currency, 1)
    if amount < minimum:
        raise invalid_request(
            f"Amount must be at least {format_amount(minimum, currency)} {currency}",
            param=param,
            code="amount_too_small",
        )
    if amount > MAX_AMOUNT:
        raise invalid_request(
            f"Amount must be no more than {format_amount(MAX_AMOUNT, currency)} {currency}",
            param=param,
            code="amount_too_large",
        )
    if currency in THREE_DECIMAL and amount % 10:
        raise invalid_request(
            f"Amounts in {currency} must end in 0 (the last decimal is not supported).",
            param=param,
            code="invalid_amount",
        )
