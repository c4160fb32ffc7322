"""Every parameter a billing endpoint accepts exists in Stripe's API (the pinned SDK's
typed parameters), so code that works against the sandbox sends nothing real Stripe
would reject."""

from __future__ import annotations

import importlib

import pytest

from paydesk_sandbox.app import BILLING_ROUTERS
from paydesk_sandbox.routing import LIST_PARAMS, RouteSpec

SDK_PARAMS = {
    ("POST", "/v1/products"): "ProductCreateParams",
    ("POST", "/v1/products/{id}"): "ProductUpdateParams",
    ("GET", "/v1/products"): "ProductListParams",
    ("POST", "/v1/prices"): "PriceCreateParams",
    ("POST", "/v1/prices/{id}"): "PriceUpdateParams",
    ("GET", "/v1/prices"): "PriceListParams",
    ("POST", "/v1/subscriptions"): "SubscriptionCreateParams",
    ("POST", "/v1/subscriptions/{id}"): "SubscriptionUpdateParams",
    ("GET", "/v1/subscriptions"): "SubscriptionListParams",
    ("DELETE", "/v1/subscriptions/{id}"): "SubscriptionCancelParams",
    ("POST", "/v1/subscriptions/{id}/pause"): "SubscriptionPauseParams",
    ("POST", "/v1/subscriptions/{id}/resume"): "SubscriptionResumeParams",
    ("GET", "/v1/subscription_items"): "SubscriptionItemListParams",
    ("POST", "/v1/subscription_items"): "SubscriptionItemCreateParams",
    ("POST", "/v1/subscription_items/{id}"): "SubscriptionItemUpdateParams",
    ("DELETE", "/v1/subscription_items/{id}"): "SubscriptionItemDeleteParams",
    ("POST", "/v1/invoices"): "InvoiceCreateParams",
    ("POST", "/v1/invoices/create_preview"): "InvoiceCreatePreviewParams",
    ("POST", "/v1/invoices/{id}"): "InvoiceUpdateParams",
    ("GET", "/v1/invoices"): "InvoiceListParams",
    ("POST", "/v1/invoices/{id}/finalize"): "InvoiceFinalizeInvoiceParams",
    ("POST", "/v1/invoices/{id}/pay"): "InvoicePayParams",
    ("GET", "/v1/invoice_payments"): "InvoicePaymentListParams",
    ("POST", "/v1/invoiceitems"): "InvoiceItemCreateParams",
    ("POST", "/v1/invoiceitems/{id}"): "InvoiceItemUpdateParams",
    ("GET", "/v1/invoiceitems"): "InvoiceItemListParams",
    ("POST", "/v1/test_helpers/test_clocks"): "TestClockCreateParams",
    ("POST", "/v1/coupons"): "CouponCreateParams",
    ("POST", "/v1/coupons/{id}"): "CouponUpdateParams",
    ("GET", "/v1/coupons"): "CouponListParams",
    ("POST", "/v1/promotion_codes"): "PromotionCodeCreateParams",
    ("POST", "/v1/promotion_codes/{id}"): "PromotionCodeUpdateParams",
    ("GET", "/v1/promotion_codes"): "PromotionCodeListParams",
    ("POST", "/v1/test_helpers/test_clocks/{id}/advance"): "TestClockAdvanceParams",
}


def _billing_routes() -> list[RouteSpec]:
    routes: list[RouteSpec] = []
    for router in BILLING_ROUTERS:
        routes.extend(router.routes)
    return [r for r in routes if r.params is not None]


def _sdk_params(name: str) -> set[str]:
    for module in ("stripe.params", "stripe.params.test_helpers"):
        found = getattr(importlib.import_module(module), name, None)
        if found is not None:
            return set(found.__annotations__)
    raise AssertionError(f"no {name} in the SDK")


@pytest.mark.parametrize("route", _billing_routes(), ids=lambda r: f"{r.method} {r.path}")
def test_billing_params_exist_in_stripe(route: RouteSpec) -> None:
    assert route.params is not None
    ours = set(route.params) - {"expand"} - LIST_PARAMS
    if not ours:
        return  # takes nothing but expand/pagination
    name = SDK_PARAMS.get((route.method, route.path))
    assert name is not None, f"map {route.method} {route.path} to its SDK params type"
    theirs = _sdk_params(name)
    assert ours <= theirs, f"not in Stripe's API: {sorted(ours - theirs)}"


def test_sdk_mapping_is_used() -> None:
    mapped = {(r.method, r.path) for r in _billing_routes()}
    assert set(SDK_PARAMS) <= mapped
