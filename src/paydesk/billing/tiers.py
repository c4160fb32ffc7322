"""The three tiers of the guide, their bootstrap in Stripe and the price-id checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paydesk.errors import PaydeskError
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key


@dataclass(frozen=True)
class Tier:
    """A subscription tier: monthly, in USD minor units."""

    key: str
    name: str
    description: str
    unit_amount: int
    currency: str = "usd"
    interval: str = "month"

    @property
    def lookup_key(self) -> str:
        """The Stripe price lookup key that makes bootstrapping idempotent."""
        return f"paydesk_{self.key}_monthly"

    @property
    def variable(self) -> str:
        """The environment variable holding this tier's price id."""
        return f"STRIPE_PRICE_{self.key.upper()}"


TIERS: tuple[Tier, ...] = (
    Tier("free", "CloudToLocalLLM Free", "Basic features with limited usage", 0),
    Tier("premium", "CloudToLocalLLM Premium", "Advanced features with increased limits", 999),
    Tier("enterprise", "CloudToLocalLLM Enterprise", "Full features with unlimited usage", 2999),
)
TIER_BY_KEY = {tier.key: tier for tier in TIERS}
TIER_RANK = {tier.key: rank for rank, tier in enumerate(TIERS)}


def configured_price_ids(settings: Settings) -> dict[str, str | None]:
    """Tier key → the price id configured for it (None when unset)."""
    return {
        "free": settings.stripe_price_free,
        "premium": settings.stripe_price_premium,
        "enterprise": settings.stripe_price_enterprise,
    }


def tier_resolver(settings: Settings) -> Callable[[str], str | None]:
    """A function mapping a price id to its tier key (None for other prices)."""
    by_price = {price: tier for tier, price in configured_price_ids(settings).items() if price}
    return by_price.get


def bootstrap_plans(gateway: StripeGateway) -> dict[str, dict[str, Any]]:
    """Create the tier products and prices in Stripe unless their lookup keys exist.

    Safe to run any number of times: existing prices are found by lookup key, and
    the creation calls carry idempotency keys derived from the tier.
    """
    existing = {
        price["lookup_key"]: price
        for price in gateway.prices_by_lookup_keys([tier.lookup_key for tier in TIERS])
    }
    prices: dict[str, dict[str, Any]] = {}
    for tier in TIERS:
        found = existing.get(tier.lookup_key)
        if found is not None:
            prices[tier.key] = found
            continue
        product = gateway.create_product(
            {
                "name": tier.name,
                "description": tier.description,
                "metadata": {"paydesk_tier": tier.key},
            },
            key=operation_key("bootstrap-product", tier.key),
        )
        prices[tier.key] = gateway.create_price(
            {
                "product": product["id"],
                "unit_amount": tier.unit_amount,
                "currency": tier.currency,
                "recurring": {"interval": "month"},
                "lookup_key": tier.lookup_key,
                "metadata": {"paydesk_tier": tier.key},
            },
            key=operation_key("bootstrap-price", tier.key),
        )
    return prices


@dataclass(frozen=True)
class PriceProblem:
    """Why a configured price id is not usable; names the variable."""

    variable: str
    problem: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem}"


def check_price(tier: Tier, price_id: str | None, gateway: StripeGateway) -> PriceProblem | None:
    """Check one configured price against its tier; None when it is right."""
    if not price_id:
        return PriceProblem(tier.variable, "not set (run `paydesk plans bootstrap`)")
    try:
        price = gateway.retrieve_price(price_id)
    except PaydeskError as exc:
        if exc.code.endswith("not_found"):
            return PriceProblem(tier.variable, "no such price in this Stripe account/mode")
        raise
    recurring = price.get("recurring") or {}
    if not price.get("active"):
        return PriceProblem(tier.variable, "the price is archived (inactive)")
    if recurring.get("interval") != tier.interval or recurring.get("interval_count", 1) != 1:
        return PriceProblem(tier.variable, "the price is not billed monthly")
    if price.get("currency") != tier.currency:
        return PriceProblem(tier.variable, f"the price is not in {tier.currency.upper()}")
    if price.get("unit_amount") != tier.unit_amount:
        return PriceProblem(
            tier.variable,
            f"the price is {price.get('unit_amount')} minor units, expected {tier.unit_amount}",
        )
    return None


def check_configured_prices(settings: Settings, gateway: StripeGateway) -> list[PriceProblem]:
    """Every problem with the configured tier prices (an empty list when all are right)."""
    configured = configured_price_ids(settings)
    problems = [check_price(tier, configured[tier.key], gateway) for tier in TIERS]
    return [problem for problem in problems if problem is not None]


def startup_price_problems(settings: Settings, gateway: StripeGateway) -> list[PriceProblem]:
    """The price problems that stop ``paydesk serve``.

    Configured prices must be right everywhere; outside development all three
    must be configured. Unset prices in development only disable subscriptions.
    """
    configured = configured_price_ids(settings)
    problems: list[PriceProblem] = []
    for tier in TIERS:
        price_id = configured[tier.key]
        if price_id is None and settings.env == "development":
            continue
        problem = check_price(tier, price_id, gateway)
        if problem is not None:
            problems.append(problem)
    return problems
