"""Every parameter an endpoint accepts exists in Stripe's API (the pinned SDK's typed
parameters), so code that works against the sandbox doesn't send parameters real
Stripe would reject."""

from __future__ import annotations

import pytest
import stripe

from paydesk_sandbox.app import CORE_ROUTERS
from paydesk_sandbox.resources.payment_intents import LEGACY_PARAMS
from paydesk_sandbox.routing import LIST_PARAMS, RouteSpec

SDK_PARAMS = {
    ("POST", "/v1/customers"): "CustomerCreateParams",
    ("POST", "/v1/customers/{id}"): "CustomerUpdateParams",
    ("GET", "/v1/customers"): "CustomerListParams",
    ("POST", "/v1/files"): "FileCreateParams",
    ("GET", "/v1/files"): "FileListParams",
    ("GET", "/v1/customers/{customer}/payment_methods"): "CustomerPaymentMethodListParams",
    ("POST", "/v1/payment_intents"): "PaymentIntentCreateParams",
    ("POST", "/v1/payment_intents/{id}"): "PaymentIntentUpdateParams",
    ("POST", "/v1/payment_intents/{id}/confirm"): "PaymentIntentConfirmParams",
    ("POST", "/v1/payment_intents/{id}/capture"): "PaymentIntentCaptureParams",
    ("POST", "/v1/payment_intents/{id}/cancel"): "PaymentIntentCancelParams",
    ("GET", "/v1/payment_intents"): "PaymentIntentListParams",
    ("GET", "/v1/payment_intents/{id}"): "PaymentIntentRetrieveParams",
    ("POST", "/v1/payment_methods"): "PaymentMethodCreateParams",
    ("POST", "/v1/payment_methods/{id}"): "PaymentMethodUpdateParams",
    ("POST", "/v1/payment_methods/{id}/attach"): "PaymentMethodAttachParams",
    ("GET", "/v1/payment_methods"): "PaymentMethodListParams",
    ("POST", "/v1/setup_intents"): "SetupIntentCreateParams",
    ("POST", "/v1/setup_intents/{id}"): "SetupIntentUpdateParams",
    ("POST", "/v1/setup_intents/{id}/confirm"): "SetupIntentConfirmParams",
    ("POST", "/v1/setup_intents/{id}/cancel"): "SetupIntentCancelParams",
    ("GET", "/v1/setup_intents"): "SetupIntentListParams",
    ("GET", "/v1/setup_intents/{id}"): "SetupIntentRetrieveParams",
    ("POST", "/v1/charges/{id}"): "ChargeUpdateParams",
    ("GET", "/v1/charges"): "ChargeListParams",
    ("POST", "/v1/refunds"): "RefundCreateParams",
    ("POST", "/v1/refunds/{id}"): "RefundUpdateParams",
    ("GET", "/v1/refunds"): "RefundListParams",
    ("POST", "/v1/disputes/{id}"): "DisputeUpdateParams",
    ("GET", "/v1/disputes"): "DisputeListParams",
    ("GET", "/v1/events"): "EventListParams",
    ("POST", "/v1/webhook_endpoints"): "WebhookEndpointCreateParams",
    ("POST", "/v1/webhook_endpoints/{id}"): "WebhookEndpointUpdateParams",
    ("GET", "/v1/balance_transactions"): "BalanceTransactionListParams",
    ("GET", "/v1/customers/search"): "CustomerSearchParams",
    ("GET", "/v1/payment_intents/search"): "PaymentIntentSearchParams",
    ("GET", "/v1/charges/search"): "ChargeSearchParams",
}


def _our_routes() -> list[RouteSpec]:
    routes: list[RouteSpec] = []
    for router in CORE_ROUTERS:
        routes.extend(router.routes)
    return [r for r in routes if r.params is not None]


@pytest.mark.parametrize("route", _our_routes(), ids=lambda r: f"{r.method} {r.path}")
def test_accepted_params_exist_in_stripe(route: RouteSpec) -> None:
    assert route.params is not None
    # payment_method_types: the pre-endive name, kept for the Stripe CLI's fixtures.
    ours = set(route.params) - {"expand"} - LIST_PARAMS - LEGACY_PARAMS
    if not ours:
        return  # takes nothing but expand/pagination
    name = SDK_PARAMS.get((route.method, route.path))
    assert name is not None, f"map {route.method} {route.path} to its SDK params type"
    theirs = set(getattr(stripe.params, name).__annotations__)
    assert ours <= theirs, f"not in Stripe's API: {sorted(ours - theirs)}"
