"""Request and response models of the JSON APIs (they define the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool, StrictInt

from paydesk.money import MAXIMUM_AMOUNT, Money

T = TypeVar("T")

Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", examples=["usd"])]
PaymentMethodId = Annotated[
    str, Field(pattern=r"^pm_[A-Za-z0-9_]{1,200}$", examples=["pm_card_visa"])
]
TierKey = Literal["free", "premium", "enterprise"]
RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]
MinorUnits = Annotated[
    StrictInt,
    Field(ge=1, le=MAXIMUM_AMOUNT, description="Integer amount in the currency's minor units"),
]


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """A page of results, newest first; pass ``next_cursor`` as ``cursor`` for more."""

    data: list[T]
    has_more: bool
    next_cursor: str | None


class MoneyOut(BaseModel):
    """An amount with its currency and an exact human rendering."""

    amount: int
    currency: str
    display: str

    @classmethod
    def of(cls, amount: int, currency: str) -> MoneyOut:
        """Build from minor units."""
        return cls(amount=amount, currency=currency, display=Money(amount, currency).format())


class CustomerOut(BaseModel):
    """A customer as mirrored."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(validation_alias="stripe_id")
    user_id: str | None
    email: str | None
    name: str | None
    default_payment_method_id: str | None
    livemode: bool
    deleted: bool
    created_at: datetime


class CustomerCreate(Strict):
    """Find or create the Stripe customer of an app user."""

    user_id: Annotated[str, Field(min_length=1, max_length=255)]
    email: EmailStr | None = None
    name: Annotated[str | None, Field(max_length=255)] = None


class PaymentOut(BaseModel):
    """A payment (PaymentIntent + latest charge). Card data: brand, last4, expiry only."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(validation_alias="stripe_id")
    customer_id: str | None
    amount: int
    amount_received: int
    amount_refunded: int
    currency: str
    status: str
    capture_method: str
    description: str | None
    latest_charge_id: str | None
    card_brand: str | None
    card_last4: str | None
    card_exp_month: int | None
    card_exp_year: int | None
    failure_code: str | None
    decline_code: str | None
    failure_message: str | None
    disputed: bool
    livemode: bool
    stripe_created: int


class PaymentResult(BaseModel):
    """A payment after an action, with what a front end needs for 3-D Secure."""

    payment: PaymentOut
    client_secret: str | None = Field(
        description="Present while the customer must act (3-D Secure) or confirm."
    )
    next_action: dict[str, Any] | None


class PaymentCreate(Strict):
    """Create a payment for a customer; confirmed at once when a payment method is given."""

    customer: Annotated[str, Field(pattern=r"^cus_[A-Za-z0-9]{1,250}$")]
    amount: MinorUnits
    currency: Currency
    payment_method: PaymentMethodId | None = None
    confirm: StrictBool = True
    capture_method: Literal["automatic", "manual"] = "automatic"
    return_url: Annotated[str | None, Field(pattern=r"^https?://", max_length=2000)] = None
    off_session: StrictBool = Field(
        default=False, description="Charge a saved card while the customer is away."
    )
    description: Annotated[str | None, Field(max_length=1000)] = None
    receipt_email: EmailStr | None = None


class CaptureBody(Strict):
    """Capture all (no amount) or part of an authorised payment."""

    amount: MinorUnits | None = None


class DisputeOut(BaseModel):
    """A dispute of a payment and how it stands."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(validation_alias="stripe_id")
    payment_intent_id: str | None
    charge_id: str | None
    amount: int
    currency: str
    status: str
    reason: str
    evidence_due_by: datetime | None
    closed_at: datetime | None
    stripe_created: int


class RefundOut(BaseModel):
    """A refund and who asked for it."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(validation_alias="stripe_id")
    payment_intent_id: str | None
    charge_id: str | None
    amount: int
    currency: str
    status: str
    reason: str | None
    note: str | None
    requested_by: str | None
    stripe_created: int


class RefundCreate(Strict):
    """Refund all (no amount) or part of a succeeded payment."""

    amount: MinorUnits | None = None
    reason: RefundReason | None = None
    note: Annotated[str | None, Field(max_length=2000)] = None


class SubscriptionOut(BaseModel):
    """A subscription to one tier."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(validation_alias="stripe_id")
    customer_id: str
    status: str
    tier: str | None
    price_id: str | None
    unit_amount: int
    currency: str
    interval: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    latest_invoice_id: str | None
    stripe_created: int


class SubscriptionResult(BaseModel):
    """A subscription after an action; ``client_secret`` confirms a pending first payment."""

    subscription: SubscriptionOut
    client_secret: str | None
    payment_status: str | None


class SubscriptionCreate(Strict):
    """Subscribe a customer to a tier."""

    customer: Annotated[str, Field(pattern=r"^cus_[A-Za-z0-9]{1,250}$")]
    tier: TierKey
    payment_method: PaymentMethodId | None = None


class TierChange(Strict):
    """Move to another tier now (upgrades invoiced at once, downgrades credited)."""

    tier: TierKey
    payment_method: PaymentMethodId | None = None


class CancelBody(Strict):
    """Cancel now (default) or at the end of the current period."""

    at_period_end: StrictBool = False


class TierOut(BaseModel):
    """A tier with its configured price."""

    key: str
    name: str
    description: str
    price: MoneyOut
    interval: str
    price_id: str | None


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code``, a ``message`` for people, the ``field`` at fault."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None
    request_id: str | None


class ErrorBody(BaseModel):
    """Every error response of every API has this shape."""

    error: ErrorDetail


_ERROR_TEXT = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Missing, expired or invalid credentials",
    402: "The payment was declined or needs 3-D Secure (see error.decline_code)",
    403: "The credentials lack the permission",
    404: "No such object",
    409: "The object's current state forbids the action",
    422: "Invalid input; error.field names it",
    429: "Too many requests",
    503: "Stripe or the database is unavailable; retry later",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, all with ``ErrorBody``."""
    return {status: {"description": _ERROR_TEXT[status], "model": ErrorBody} for status in statuses}
