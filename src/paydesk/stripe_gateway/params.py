"""The SDK's typed request parameters, for the services that build them.

Re-exported here so that ``paydesk.stripe_gateway`` stays the only package that
imports ``stripe``: a service in ``paydesk.billing`` types the parameters it builds
with these and hands them to a ``StripeGateway`` method, which takes the same types.
"""

from __future__ import annotations

from stripe.params import (
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

__all__ = [
    "CustomerCreateParams",
    "DisputeUpdateParams",
    "EventListParams",
    "InvoiceCreatePreviewParams",
    "PaymentIntentConfirmParams",
    "PaymentIntentCreateParams",
    "PriceCreateParams",
    "ProductCreateParams",
    "PromotionCodeListParams",
    "RefundCreateParams",
    "SetupIntentCreateParams",
    "SubscriptionCreateParams",
    "SubscriptionUpdateParams",
    "WebhookEndpointCreateParams",
]
