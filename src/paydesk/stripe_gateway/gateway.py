"""Every call Paydesk makes to Stripe.

One ``stripe.StripeClient`` per gateway, built from settings: the SDK's pinned
API version, ``max_network_retries`` 3 (5xx, 409, timeouts and dropped
connections), a per-attempt timeout (``PAYDESK_STRIPE_TIMEOUT_SECONDS``, 30 s),
429s retried after their ``Retry-After`` (``http.py``), telemetry off. Every
mutating call takes an ``idempotency_key`` that the domain derives from the
business operation, so the SDK's retries, a retried request or a double click is
one operation at Stripe. Results are plain dicts; errors are Paydesk errors.

One module on purpose, though it passes ~500 lines: it is the whole surface Paydesk
uses at Stripe, one short method per call, read and reviewed as one list.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn

import stripe

from paydesk.errors import ConfigurationError
from paydesk.settings import Settings
from paydesk.stripe_gateway.errors import translate
from paydesk.stripe_gateway.http import ObservedRequestsClient, Observer
from paydesk.stripe_gateway.params import (
    CustomerCreateParams,
    DisputeUpdateParams,
    EventListParams,
    InvoiceCreatePreviewParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
    PriceCreateParams,
    ProductCreateParams,
    PromotionCodeListParams,
    RefundCreateParams,
    SetupIntentCreateParams,
    SubscriptionCreateParams,
    SubscriptionUpdateParams,
    WebhookEndpointCreateParams,
)

MAX_NETWORK_RETRIES = 3
TIMEOUT_SECONDS = 30.0  # the default of settings.stripe_timeout_seconds

Json = dict[str, Any]


def pinned_api_version() -> str:
    """The Stripe API version the installed SDK pins (sent on every request)."""
    return str(stripe.api_version)


def operation_key(operation: str, *parts: object) -> str:
    """An idempotency key for one business operation (≤ 255 chars, no raw input)."""
    digest = hashlib.sha256("\x1f".join([operation, *map(str, parts)]).encode()).hexdigest()
    return f"paydesk-{operation}-{digest[:40]}"


def _raise(exc: stripe.StripeError) -> NoReturn:
    raise translate(exc) from exc


def _plain(obj: stripe.StripeObject) -> Json:
    return obj.to_dict(recursive=True)


def _wire(value: Any) -> Any:
    """``value`` as Stripe sent it: the SDK parses ``decimal_string`` fields (a price's
    ``unit_amount_decimal``) into ``Decimal``, which is a string on the wire and in a
    delivered event, and which no JSON encoder writes."""
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def _event(obj: stripe.StripeObject) -> Json:
    """An event as plain JSON, exactly as a webhook delivery would carry it."""
    return _wire(_plain(obj))  # type: ignore[no-any-return]


class StripeGateway:
    """Typed access to the Stripe API operations Paydesk uses."""

    def __init__(self, client: stripe.StripeClient, *, live: bool) -> None:
        self._client = client
        self.live = live

    # -- account -----------------------------------------------------------------
    def server_time(self) -> datetime | None:
        """Stripe's clock (its ``Date`` header) on a cheap authenticated call.

        Also proves the key is accepted: a revoked key raises here.
        """
        try:
            balance = self._client.v1.balance.retrieve()
        except stripe.StripeError as exc:
            _raise(exc)
        response = balance.last_response
        header = response.headers.get("Date") or response.headers.get("date") if response else None
        return parsedate_to_datetime(header) if header else None

    # -- customers ---------------------------------------------------------------
    def create_customer(
        self, *, email: str | None, name: str | None, metadata: dict[str, str], key: str
    ) -> Json:
        """Create a customer."""
        params: CustomerCreateParams = {"metadata": metadata}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        try:
            return _plain(self._client.v1.customers.create(params, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_customer(self, customer_id: str) -> Json:
        """Retrieve a customer (a deleted one comes back with ``deleted: true``)."""
        try:
            return _plain(self._client.v1.customers.retrieve(customer_id))
        except stripe.StripeError as exc:
            _raise(exc)

    def attach_payment_method(self, payment_method: str, customer_id: str, *, key: str) -> Json:
        """Attach a payment method (or a test ``pm_card_…`` id) to a customer."""
        try:
            return _plain(
                self._client.v1.payment_methods.attach(
                    payment_method, {"customer": customer_id}, {"idempotency_key": key}
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def set_default_payment_method(
        self, customer_id: str, payment_method: str, *, key: str
    ) -> Json:
        """Make ``payment_method`` the customer's default for invoices."""
        try:
            return _plain(
                self._client.v1.customers.update(
                    customer_id,
                    {"invoice_settings": {"default_payment_method": payment_method}},
                    {"idempotency_key": key},
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    # -- payments ----------------------------------------------------------------
    def create_payment_intent(self, params: PaymentIntentCreateParams, *, key: str) -> Json:
        """Create (and, with ``confirm``, confirm) a PaymentIntent; expands the charge."""
        params = {**params, "expand": ["latest_charge", "payment_method"]}
        try:
            return _plain(self._client.v1.payment_intents.create(params, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            _raise(exc)

    def confirm_payment_intent(
        self, intent_id: str, params: PaymentIntentConfirmParams, *, key: str
    ) -> Json:
        """Confirm a PaymentIntent."""
        params = {**params, "expand": ["latest_charge", "payment_method"]}
        try:
            return _plain(
                self._client.v1.payment_intents.confirm(intent_id, params, {"idempotency_key": key})
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def capture_payment_intent(self, intent_id: str, amount: int | None, *, key: str) -> Json:
        """Capture an authorised PaymentIntent (all of it, or ``amount``)."""
        try:
            return _plain(
                self._client.v1.payment_intents.capture(
                    intent_id,
                    {"amount_to_capture": amount, "expand": ["latest_charge", "payment_method"]}
                    if amount is not None
                    else {"expand": ["latest_charge", "payment_method"]},
                    {"idempotency_key": key},
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def cancel_payment_intent(self, intent_id: str, *, key: str) -> Json:
        """Cancel a PaymentIntent that has not succeeded."""
        try:
            return _plain(
                self._client.v1.payment_intents.cancel(
                    intent_id, {"expand": ["latest_charge"]}, {"idempotency_key": key}
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_payment_intent(self, intent_id: str) -> Json:
        """Retrieve a PaymentIntent with its latest charge and payment method."""
        try:
            return _plain(
                self._client.v1.payment_intents.retrieve(
                    intent_id, {"expand": ["latest_charge", "payment_method"]}
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    # -- refunds -----------------------------------------------------------------
    def create_refund(self, params: RefundCreateParams, *, key: str) -> Json:
        """Refund all or part of a payment."""
        try:
            return _plain(self._client.v1.refunds.create(params, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_refund(self, refund_id: str) -> Json:
        """Retrieve a refund."""
        try:
            return _plain(self._client.v1.refunds.retrieve(refund_id))
        except stripe.StripeError as exc:
            _raise(exc)

    def list_refunds(self, payment_intent: str) -> list[Json]:
        """Every refund of a PaymentIntent, newest first."""
        try:
            page = self._client.v1.refunds.list({"payment_intent": payment_intent, "limit": 100})
            return [_plain(refund) for refund in page.auto_paging_iter()]
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_charge(self, charge_id: str) -> Json:
        """Retrieve a charge."""
        try:
            return _plain(self._client.v1.charges.retrieve(charge_id))
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_dispute(self, dispute_id: str) -> Json:
        """Retrieve a dispute."""
        try:
            return _plain(self._client.v1.disputes.retrieve(dispute_id))
        except stripe.StripeError as exc:
            _raise(exc)

    def update_dispute(self, dispute_id: str, params: DisputeUpdateParams, *, key: str) -> Json:
        """Add evidence to a dispute (``submit``: send it to the bank now)."""
        try:
            return _plain(
                self._client.v1.disputes.update(dispute_id, params, {"idempotency_key": key})
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def upload_evidence_file(self, content: bytes, filename: str, *, key: str) -> Json:
        """Upload a dispute evidence file (Files API, purpose ``dispute_evidence``)."""
        handle = io.BytesIO(content)
        handle.name = filename  # the SDK sends it as the part's filename
        try:
            return _plain(
                self._client.v1.files.create(
                    {"file": handle, "purpose": "dispute_evidence"}, {"idempotency_key": key}
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def close_dispute(self, dispute_id: str, *, key: str) -> Json:
        """Accept a dispute: it is closed as lost."""
        try:
            return _plain(self._client.v1.disputes.close(dispute_id, {}, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            _raise(exc)

    # -- catalog -----------------------------------------------------------------
    def prices_by_lookup_keys(self, lookup_keys: list[str]) -> list[Json]:
        """Active prices with these lookup keys."""
        try:
            page = self._client.v1.prices.list(
                {"lookup_keys": lookup_keys, "active": True, "limit": 100}
            )
        except stripe.StripeError as exc:
            _raise(exc)
        return [_plain(price) for price in page.data]

    def retrieve_price(self, price_id: str) -> Json:
        """Retrieve a price with its product."""
        try:
            return _plain(self._client.v1.prices.retrieve(price_id, {"expand": ["product"]}))
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_product(self, product_id: str) -> Json:
        """Retrieve a product."""
        try:
            return _plain(self._client.v1.products.retrieve(product_id))
        except stripe.StripeError as exc:
            _raise(exc)

    def create_product(self, params: ProductCreateParams, *, key: str) -> Json:
        """Create a product."""
        try:
            return _plain(self._client.v1.products.create(params, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            _raise(exc)

    def create_price(self, params: PriceCreateParams, *, key: str) -> Json:
        """Create a price."""
        try:
            return _plain(self._client.v1.prices.create(params, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            _raise(exc)

    # -- promotions ----------------------------------------------------------------
    def find_promotion_codes(self, code: str) -> list[Json]:
        """The active promotion codes whose customer-facing code is ``code``."""
        params: PromotionCodeListParams = {"code": code, "active": True, "limit": 10}
        try:
            page = self._client.v1.promotion_codes.list(params)
        except stripe.StripeError as exc:
            _raise(exc)
        return [_plain(promo) for promo in page.data]

    def retrieve_coupon(self, coupon_id: str) -> Json:
        """Retrieve a coupon."""
        try:
            return _plain(self._client.v1.coupons.retrieve(coupon_id))
        except stripe.StripeError as exc:
            _raise(exc)

    # -- subscriptions -----------------------------------------------------------
    _SUBSCRIPTION_EXPAND = ("latest_invoice.confirmation_secret", "latest_invoice.payments")

    def create_subscription(self, params: SubscriptionCreateParams, *, key: str) -> Json:
        """Create a subscription; expands what the front end needs to confirm payment."""
        params = {**params, "expand": list(self._SUBSCRIPTION_EXPAND)}
        try:
            return _plain(self._client.v1.subscriptions.create(params, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            _raise(exc)

    def update_subscription(
        self, subscription_id: str, params: SubscriptionUpdateParams, *, key: str
    ) -> Json:
        """Update a subscription (tier change, cancel at period end, undo)."""
        params = {**params, "expand": list(self._SUBSCRIPTION_EXPAND)}
        try:
            return _plain(
                self._client.v1.subscriptions.update(
                    subscription_id, params, {"idempotency_key": key}
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def cancel_subscription(self, subscription_id: str, *, key: str) -> Json:
        """Cancel a subscription now."""
        try:
            return _plain(
                self._client.v1.subscriptions.cancel(subscription_id, {}, {"idempotency_key": key})
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_subscription(self, subscription_id: str) -> Json:
        """Retrieve a subscription."""
        try:
            return _plain(
                self._client.v1.subscriptions.retrieve(
                    subscription_id, {"expand": list(self._SUBSCRIPTION_EXPAND)}
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_invoice(self, invoice_id: str) -> Json:
        """Retrieve an invoice with its payments."""
        try:
            return _plain(self._client.v1.invoices.retrieve(invoice_id, {"expand": ["payments"]}))
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_open_invoice(self, invoice_id: str) -> Json:
        """Retrieve an invoice with the client secret of its PaymentIntent (while open)."""
        try:
            return _plain(
                self._client.v1.invoices.retrieve(
                    invoice_id, {"expand": ["confirmation_secret", "payments"]}
                )
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def preview_invoice(self, params: InvoiceCreatePreviewParams) -> Json:
        """The invoice a change would produce (proration preview); creates nothing."""
        try:
            return _plain(self._client.v1.invoices.create_preview(params))
        except stripe.StripeError as exc:
            _raise(exc)

    # -- setup intents -------------------------------------------------------------
    def create_setup_intent(self, params: SetupIntentCreateParams, *, key: str) -> Json:
        """Create a SetupIntent (save a card for later, off-session payments)."""
        try:
            return _plain(self._client.v1.setup_intents.create(params, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_setup_intent(self, intent_id: str) -> Json:
        """Retrieve a SetupIntent."""
        try:
            return _plain(self._client.v1.setup_intents.retrieve(intent_id))
        except stripe.StripeError as exc:
            _raise(exc)

    # -- events and webhook endpoints --------------------------------------------
    def iter_events(self, params: EventListParams) -> Iterator[Json]:
        """Every event matching ``params``, newest first, across pages."""
        try:
            page = self._client.v1.events.list({**params, "limit": 100})
            for event in page.auto_paging_iter():
                yield _event(event)
        except stripe.StripeError as exc:
            _raise(exc)

    def retrieve_event(self, event_id: str) -> Json:
        """Retrieve an event."""
        try:
            return _event(self._client.v1.events.retrieve(event_id))
        except stripe.StripeError as exc:
            _raise(exc)

    def create_webhook_endpoint(self, params: WebhookEndpointCreateParams, *, key: str) -> Json:
        """Register a webhook endpoint; the result holds its secret (shown once)."""
        try:
            return _plain(
                self._client.v1.webhook_endpoints.create(params, {"idempotency_key": key})
            )
        except stripe.StripeError as exc:
            _raise(exc)

    def raw_request(
        self,
        method: str,
        path: str,
        params: Json,
        *,
        key: str | None = None,
        tolerated_error: str | None = None,
    ) -> Json | None:
        """Any API call by method and path, as ``stripe trigger`` makes them.

        Returns the object, or None when Stripe refuses with the error type
        ``tolerated_error`` (a step that is meant to fail, such as a declined card);
        any other refusal is translated and raised like every gateway call's.
        """
        options: Json = {"idempotency_key": key} if key else {}
        try:
            response = self._client.raw_request(method, path, **params, **options)
        except stripe.StripeError as exc:
            error_type = getattr(exc.error, "type", None) if exc.error else None
            if tolerated_error is not None and error_type == tolerated_error:
                return None
            _raise(exc)
        return _plain(self._client.deserialize(response, api_mode="V1"))

    def update_webhook_endpoint(self, endpoint_id: str, enabled_events: list[str]) -> Json:
        """Replace a webhook endpoint's event list (its secret stays)."""
        try:
            # The SDK types enabled_events as a list of literal event names; these
            # come from that same list (webhook_event_types), checked at run time.
            params: Any = {"enabled_events": enabled_events}
            return _plain(self._client.v1.webhook_endpoints.update(endpoint_id, params))
        except stripe.StripeError as exc:
            _raise(exc)

    def list_webhook_endpoints(self) -> list[Json]:
        """Every registered webhook endpoint."""
        try:
            page = self._client.v1.webhook_endpoints.list({"limit": 100})
            return [_plain(endpoint) for endpoint in page.auto_paging_iter()]
        except stripe.StripeError as exc:
            _raise(exc)


def build_gateway(settings: Settings, *, observers: list[Observer] | None = None) -> StripeGateway:
    """The gateway for ``settings``; ``ConfigurationError`` when no secret key is set."""
    if settings.stripe_secret_key is None:
        raise ConfigurationError("STRIPE_SECRET_KEY", "required to talk to Stripe")
    # The SDK reads this module-level flag per request; Paydesk never sends telemetry.
    stripe.enable_telemetry = False
    http_client = ObservedRequestsClient(
        timeout=settings.stripe_timeout_seconds,
        debug=settings.stripe_debug,
        observers=list(observers or []),
    )
    # Uploads go to Stripe's "files" address (files.stripe.com); a sandbox serves both.
    base_addresses: Any = (
        {"api": settings.stripe_api_base, "files": settings.stripe_api_base}
        if settings.stripe_api_base
        else None
    )
    client = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=base_addresses,
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=http_client,
    )
    return StripeGateway(client, live=settings.key_mode == "live")


def webhook_event_types() -> frozenset[str]:
    """Every event type a webhook endpoint may subscribe to at the pinned API version,
    read from the SDK's typed parameters (so the list cannot drift from the SDK)."""
    import typing

    hint = stripe.params.WebhookEndpointCreateParams.__annotations__["enabled_events"]
    return frozenset(typing.get_args(typing.get_args(hint)[0]))
