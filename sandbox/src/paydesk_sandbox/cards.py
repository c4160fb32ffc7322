"""Stripe's test cards and what happens when they are used (reference §1–§2).

:func:`card_outcome` is the one place that decides whether a payment with a card
succeeds, is declined (with which code) or needs 3-D Secure; on-session
confirmation, off-session confirmation (subscription renewals) and 3-D Secure
completion all go through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from paydesk_sandbox.errors import card_error


@dataclass(frozen=True, slots=True)
class Decline:
    """A decline as Stripe reports it: error ``code``, ``decline_code``, message."""

    code: str
    decline_code: str | None
    message: str


GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
INSUFFICIENT = Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
LOST = Decline("card_declined", "lost_card", "Your card was declined.")
STOLEN = Decline("card_declined", "stolen_card", "Your card was declined.")
EXPIRED = Decline("expired_card", "expired_card", "Your card has expired.")
INCORRECT_CVC = Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.")
PROCESSING = Decline(
    "processing_error",
    "processing_error",
    "An error occurred while processing your card. Try again in a little bit.",
)
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)


class ThreeDS(Enum):
    """When a card asks for 3-D Secure."""

    NEVER = "never"
    ALWAYS = "always"  # every payment, on- or off-session (…3184)
    UNLESS_SET_UP = "unless_set_up"  # off-session fine after a SetupIntent (…3155)
    REQUIRED = "required"  # 3DS2 required on every payment (…3220, …1629)


@dataclass(frozen=True, slots=True)
class TestCard:
    """One test card. ``key`` is what the sandbox remembers about a PaymentMethod
    (never the number)."""

    key: str
    number: str
    brand: str = "visa"
    funding: str = "credit"
    decline: Decline | None = None
    attach_fails: bool = False  # declined cards can't be attached to customers
    three_ds: ThreeDS = ThreeDS.NEVER
    dispute: str | None = None  # "fraudulent" | "inquiry" | "product_not_received"
    refund: str | None = None  # "pending" | "fail"

    @property
    def last4(self) -> str:
        """The last four digits."""
        return self.number[-4:]


CARDS: tuple[TestCard, ...] = (
    TestCard("visa", "4242424242424242"),
    TestCard("visa_debit", "4000056655665556", funding="debit"),
    TestCard("mastercard", "5555555555554444", brand="mastercard"),
    TestCard("amex", "378282246310005", brand="amex"),
    TestCard("discover", "6011111111111117", brand="discover"),
    TestCard("chargeDeclined", "4000000000000002", decline=GENERIC, attach_fails=True),
    TestCard(
        "chargeDeclinedInsufficientFunds",
        "4000000000009995",
        decline=INSUFFICIENT,
        attach_fails=True,
    ),
    TestCard("chargeDeclinedLostCard", "4000000000009987", decline=LOST, attach_fails=True),
    TestCard("chargeDeclinedStolenCard", "4000000000009979", decline=STOLEN, attach_fails=True),
    TestCard("chargeDeclinedExpiredCard", "4000000000000069", decline=EXPIRED, attach_fails=True),
    TestCard(
        "chargeDeclinedIncorrectCvc", "4000000000000127", decline=INCORRECT_CVC, attach_fails=True
    ),
    TestCard(
        "chargeDeclinedProcessingError", "4000000000000119", decline=PROCESSING, attach_fails=True
    ),
    TestCard("chargeCustomerFail", "4000000000000341", decline=GENERIC),
    TestCard("authenticationRequired", "4000002760003184", three_ds=ThreeDS.ALWAYS),
    TestCard("authenticationRequiredOnSetup", "4000002500003155", three_ds=ThreeDS.UNLESS_SET_UP),
    TestCard("threeDSecure2Required", "4000000000003220", three_ds=ThreeDS.REQUIRED),
    TestCard(
        "threeDSecureRequiredChargeDeclined",
        "4000008400001629",
        three_ds=ThreeDS.REQUIRED,
        decline=GENERIC,
    ),
    TestCard("createDispute", "4000000000000259", dispute="fraudulent"),
    TestCard("createDisputeInquiry", "4000000000001976", dispute="inquiry"),
    TestCard("createDisputeProductNotReceived", "4000000000002685", dispute="product_not_received"),
    TestCard("pendingRefund", "4000000000007726", refund="pending"),
    TestCard("refundFail", "4000000000005126", refund="fail"),
)
BY_KEY = {card.key: card for card in CARDS}
BY_NUMBER = {card.number: card for card in CARDS}
# Alternative names the docs and the Stripe CLI use for the same cards.
ALIASES = {
    "visa_chargeDeclined": "chargeDeclined",
    "visa_chargeDeclinedInsufficientFunds": "chargeDeclinedInsufficientFunds",
    "visa_chargeDeclinedLostCard": "chargeDeclinedLostCard",
    "visa_chargeDeclinedStolenCard": "chargeDeclinedStolenCard",
    "visa_chargeDeclinedExpiredCard": "chargeDeclinedExpiredCard",
    "visa_chargeDeclinedIncorrectCvc": "chargeDeclinedIncorrectCvc",
    "visa_chargeDeclinedProcessingError": "chargeDeclinedProcessingError",
    "threeDSecure2": "threeDSecure2Required",
    "authenticationRequiredSetupForOffSession": "authenticationRequiredOnSetup",
}


def card_for_test_id(test_id: str) -> TestCard | None:
    """The card behind ``pm_card_<name>`` or ``tok_<name>``, else None."""
    if test_id.startswith("pm_card_"):
        name = test_id[len("pm_card_") :]
    elif test_id.startswith("tok_"):
        name = test_id[len("tok_") :]
    else:
        return None
    return BY_KEY.get(ALIASES.get(name, name))


def card_for_number(number: str) -> TestCard:
    """The test card for a raw number; 402 ``incorrect_number`` if it is not valid."""
    digits = number.replace(" ", "")
    known = BY_NUMBER.get(digits)
    if known is not None:
        return known
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
        raise card_error("incorrect_number", "Your card number is incorrect.", param="number")
    brand = "visa"
    if digits[0] == "5" or digits[:2] in ("22", "27"):
        brand = "mastercard"
    elif digits[:2] in ("34", "37"):
        brand = "amex"
    elif digits.startswith("6011"):
        brand = "discover"
    # Any other valid number behaves like a successful card of its brand.
    return TestCard("number_" + digits[-4:] + "_" + brand, digits, brand=brand)


def card_by_key(key: str) -> TestCard:
    """Rebuild the card remembered for a PaymentMethod."""
    if key in BY_KEY:
        return BY_KEY[key]
    _, last4, brand = key.split("_", 2)
    return TestCard(key, "0" * 12 + last4, brand=brand)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class Result(Enum):
    """What a payment attempt with a card leads to."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"


@dataclass(frozen=True, slots=True)
class Outcome:
    """:func:`card_outcome`'s answer; ``decline`` is set when ``result`` is DECLINED."""

    result: Result
    decline: Decline | None = None


def card_outcome(
    card: TestCard, *, off_session: bool, set_up: bool, authenticated: bool
) -> Outcome:
    """Decide a payment attempt.

    ``off_session``: the customer is not present (renewals, ``off_session=true``),
    so a card that needs 3-D Secure is declined with ``authentication_required``
    instead of asking for it. ``set_up``: the card went through a SetupIntent.
    ``authenticated``: 3-D Secure was just completed for this attempt.
    """
    if not authenticated and card.three_ds is not ThreeDS.NEVER:
        needs = not (card.three_ds is ThreeDS.UNLESS_SET_UP and set_up and off_session)
        if needs:
            if off_session:
                return Outcome(Result.DECLINED, AUTHENTICATION_REQUIRED)
            return Outcome(Result.REQUIRES_ACTION)
    if card.decline is not None:
        return Outcome(Result.DECLINED, card.decline)
    return Outcome(Result.SUCCEEDED)
