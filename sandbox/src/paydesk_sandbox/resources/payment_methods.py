"""``/v1/payment_methods``: cards from test ids, tokens or test numbers.

Only brand, last4, expiry and funding are kept (plus, privately, which test card it
is); the full number and CVC are never stored.
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.cards import TestCard, card_by_key, card_for_number, card_for_test_id
from paydesk_sandbox.errors import card_error, invalid_request, parameter_missing, resource_missing
from paydesk_sandbox.listing import paginate
from paydesk_sandbox.params import Params
from paydesk_sandbox.resources.customer_lookup import get_customer
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import SandboxState

Json = dict[str, Any]
router = Router()
_ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")


def card_of(state: SandboxState, pm: Json) -> TestCard:
    """The test card behind a PaymentMethod."""
    return card_by_key(state.private_of(pm["id"])["card"])


def new_card_payment_method(
    state: SandboxState,
    card: TestCard,
    *,
    exp_month: int = 12,
    exp_year: int | None = None,
    billing_details: Params | None = None,
    metadata: dict[str, str] | None = None,
) -> Json:
    """Store a new card PaymentMethod (not attached to anyone)."""
    now = state.now()
    year = exp_year or (_year(now) + 3)
    address = billing_details.sub("address") if billing_details else None
    pm: Json = {
        "id": state.new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {k: address.string(k) if address else None for k in _ADDRESS_KEYS},
            "email": billing_details.string("email") if billing_details else None,
            "name": billing_details.string("name") if billing_details else None,
            "phone": billing_details.string("phone") if billing_details else None,
            "tax_id": None,
        },
        "card": {
            "brand": card.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked",
            },
            "country": "US",
            "display_brand": card.brand,
            "exp_month": exp_month,
            "exp_year": year,
            # Stable per card number, as Stripe's fingerprint is, without keeping it.
            "fingerprint": ("fp" + card.key + "0" * 14)[:16],
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
            "regulated_status": "unregulated",
        },
        "created": now,
        "customer": None,
        "livemode": False,
        "metadata": metadata or {},
        "type": "card",
        "customer_account": None,
    }
    state.add(pm)
    state.private_of(pm["id"])["card"] = card.key
    return pm


def _year(ts: int) -> int:
    return 1970 + ts // 31_556_952


def resolve(state: SandboxState, value: str, param: str = "payment_method") -> Json:
    """A PaymentMethod for ``value``: ``pm_card_…``/``tok_…`` make a new one (as
    Stripe does), a ``pm_…`` id is looked up (404 otherwise)."""
    card = card_for_test_id(value)
    if card is not None:
        return new_card_payment_method(state, card)
    pm = state.store("payment_method").get(value)
    if pm is None:
        raise resource_missing("PaymentMethod", value, param=param)
    return pm


def attach(state: SandboxState, pm: Json, customer: Json, *, emit: bool = True) -> Json:
    """Attach ``pm`` to ``customer``; declined test cards refuse (402) as in Stripe."""
    if pm["customer"] == customer["id"]:
        return pm
    if pm["customer"] is not None:
        raise invalid_request(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    card = card_of(state, pm)
    if card.attach_fails and card.decline is not None:
        raise card_error(
            card.decline.code,
            card.decline.message,
            decline_code=card.decline.decline_code,
            extra={"payment_method": pm},
        )
    pm["customer"] = customer["id"]
    if emit:
        state.emit("payment_method.attached", pm)
    return pm


def detach(state: SandboxState, pm: Json) -> Json:
    """Detach ``pm`` from its customer (and clear it as their default)."""
    customer_id = pm["customer"]
    if customer_id is None:
        raise invalid_request(
            "The payment method you provided is not attached to a customer so detachment "
            "is impossible.",
            param="payment_method",
        )
    pm["customer"] = None
    customer = state.store("customer").get(customer_id)
    if customer is not None and customer["invoice_settings"]["default_payment_method"] == pm["id"]:
        customer["invoice_settings"]["default_payment_method"] = None
    state.emit("payment_method.detached", pm, {"customer": customer_id})
    return pm


def resolve_for_customer(
    state: SandboxState,
    value: str,
    customer: Json,
    param: str,
    attached: list[Json],
    attach_new: bool = False,
) -> Json:
    """A PaymentMethod of ``customer`` for ``value``.

    A test id (``pm_card_visa``) seen before for this customer reuses the same
    PaymentMethod, so ``payment_method=pm_card_visa`` together with
    ``invoice_settings[default_payment_method]=pm_card_visa`` names one card, as
    the Stripe CLI relies on. Newly attached PMs are appended to ``attached`` so the
    caller emits ``payment_method.attached`` after its own event.
    """
    seen: dict[str, str] = state.private_of(customer["id"]).setdefault("test_pms", {})
    if value in seen and seen[value] in state.store("payment_method"):
        return state.store("payment_method")[seen[value]]
    is_test_id = card_for_test_id(value) is not None
    pm = resolve(state, value, param)
    if pm["customer"] != customer["id"]:
        if not (attach_new or is_test_id):
            raise invalid_request(
                f"The customer does not have a payment method with the ID {value}. The "
                "payment method must be attached to the customer.",
                param=param,
            )
        attach(state, pm, customer, emit=False)
        attached.append(pm)
    if is_test_id:
        seen[value] = pm["id"]
    return pm


def default_payment_method(state: SandboxState, customer_id: str) -> Json | None:
    """The customer's ``invoice_settings.default_payment_method`` object, if any."""
    customer = state.store("customer").get(customer_id)
    if customer is None:
        return None
    pm_id = customer["invoice_settings"]["default_payment_method"]
    return state.store("payment_method").get(pm_id) if pm_id else None


def card_from_params(card: Params) -> tuple[TestCard, int, int | None]:
    token = card.string("token")
    if token is not None:
        test = card_for_test_id(token)
        if test is None:
            raise resource_missing("token", token, param="card[token]")
        return test, 12, None
    number = card.string("number")
    if number is None:
        raise parameter_missing("card[number]")
    test = card_for_number(number)
    exp_month = card.integer("exp_month")
    exp_year = card.integer("exp_year")
    if exp_month is None:
        raise parameter_missing("card[exp_month]")
    if exp_year is None:
        raise parameter_missing("card[exp_year]")
    if not 1 <= exp_month <= 12:
        raise card_error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", param="exp_month"
        )
    if exp_year < 100:
        exp_year += 2000
    return test, exp_month, exp_year


@router.post(
    "/v1/payment_methods",
    params={
        "type",
        "card",
        "billing_details",
        "metadata",
        "allow_redisplay",
        "customer",
        "payment_method",
    },
)
def create_payment_method(ctx: Ctx) -> Json:
    """Create a card PaymentMethod from ``card[number]``… or ``card[token]``."""
    return payment_method_from_params(ctx.state, ctx.params)


def payment_method_from_params(state: SandboxState, p: Params) -> Json:
    """A new card PaymentMethod from ``type=card&card[...]&billing_details[...]``
    (also used for ``payment_method_data`` on PaymentIntents and SetupIntents)."""
    kind = p.required_string("type")
    if kind != "card":
        raise invalid_request(
            f"The sandbox supports only card PaymentMethods, not '{kind}'.", param=p.name("type")
        )
    card_params = p.sub("card")
    if card_params is None:
        raise parameter_missing(p.name("card"))
    test, exp_month, exp_year = card_from_params(card_params)
    if exp_year is not None and (exp_year, exp_month) < _year_month(state.now()):
        raise card_error(
            "invalid_expiry_year", "Your card's expiration year is invalid.", param="exp_year"
        )
    return new_card_payment_method(
        state,
        test,
        exp_month=exp_month,
        exp_year=exp_year,
        billing_details=p.sub("billing_details"),
        metadata=p.metadata(),
    )


def _year_month(ts: int) -> tuple[int, int]:
    import datetime as dt

    d = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return d.year, d.month


def _get(state: SandboxState, pm_id: str) -> Json:
    return state.get("payment_method", pm_id, label="PaymentMethod", param="payment_method")


@router.get("/v1/payment_methods/{id}")
def retrieve_payment_method(ctx: Ctx) -> Json:
    """A PaymentMethod by id (a test id like ``pm_card_visa`` makes one, as in Stripe)."""
    return resolve(ctx.state, ctx.path["id"])


@router.post(
    "/v1/payment_methods/{id}", params={"billing_details", "metadata", "card", "allow_redisplay"}
)
def update_payment_method(ctx: Ctx) -> Json:
    """Update metadata, billing details or the expiry."""
    pm = _get(ctx.state, ctx.path["id"])
    p = ctx.params
    pm["metadata"] = p.metadata(pm["metadata"])
    card = p.sub("card")
    if card is not None:
        for key in ("exp_month", "exp_year"):
            value = card.integer(key)
            if value is not None:
                pm["card"][key] = value
    details = p.sub("billing_details")
    if details is not None:
        for key in ("email", "name", "phone"):
            if key in details:
                pm["billing_details"][key] = details.string(key)
    ctx.state.emit("payment_method.updated", pm)
    return pm


@router.post("/v1/payment_methods/{id}/attach", params={"customer"})
def attach_payment_method(ctx: Ctx) -> Json:
    """Attach to ``customer``."""
    state = ctx.state
    customer = get_customer(state, ctx.params.required_string("customer"), param="customer")
    pm = resolve(state, ctx.path["id"], "payment_method")
    return attach(state, pm, customer)


@router.post("/v1/payment_methods/{id}/detach")
def detach_payment_method(ctx: Ctx) -> Json:
    """Detach from its customer."""
    return detach(ctx.state, _get(ctx.state, ctx.path["id"]))


@router.list("/v1/payment_methods", params={"customer", "type"})
def list_payment_methods(ctx: Ctx) -> Json:
    """A customer's PaymentMethods, newest first."""
    customer = ctx.params.string("customer")
    kind = ctx.params.string("type")
    items: Any = ctx.state.iter_newest_first("payment_method")
    if customer is not None:
        items = (pm for pm in items if pm["customer"] == customer)
    if kind is not None:
        items = (pm for pm in items if pm["type"] == kind)
    return paginate(ctx, items)


@router.get("/v1/customers/{customer}/payment_methods/{id}")
def retrieve_customer_payment_method(ctx: Ctx) -> Json:
    """A customer's PaymentMethod."""
    pm = _get(ctx.state, ctx.path["id"])
    if pm["customer"] != ctx.path["customer"]:
        raise resource_missing("PaymentMethod", pm["id"], param="payment_method")
    return pm


@router.list("/v1/customers/{customer}/payment_methods", params={"type"})
def list_customer_payment_methods(ctx: Ctx) -> Json:
    """``GET /v1/customers/{id}/payment_methods``."""
    customer = get_customer(ctx.state, ctx.path["customer"])
    items = (
        pm
        for pm in ctx.state.iter_newest_first("payment_method")
        if pm["customer"] == customer["id"]
    )
    return paginate(ctx, items)
