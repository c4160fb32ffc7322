"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from paydesk.db.models.admin import (
    AdminApiToken,
    AdminRecoveryCode,
    AdminSession,
    AdminUser,
    AuditEntry,
)
from paydesk.db.models.analytics import (
    DailyRollup,
    MetricsSnapshot,
    MrrCustomer,
    MrrDaily,
    MrrMonth,
    MrrSegment,
    SubscriptionDaily,
)
from paydesk.db.models.base import Base
from paydesk.db.models.catalog import Price, Product
from paydesk.db.models.customers import Customer
from paydesk.db.models.events import StripeEvent, StripeEventAttempt, WebhookRejection
from paydesk.db.models.payments import Dispute, Payment, Refund
from paydesk.db.models.portal import EmailOutbox, PortalSession
from paydesk.db.models.subscriptions import Invoice, Subscription

__all__ = [
    "AdminApiToken",
    "AdminRecoveryCode",
    "AdminSession",
    "AdminUser",
    "AuditEntry",
    "Base",
    "Customer",
    "DailyRollup",
    "Dispute",
    "EmailOutbox",
    "Invoice",
    "MetricsSnapshot",
    "MrrCustomer",
    "MrrDaily",
    "MrrMonth",
    "MrrSegment",
    "Payment",
    "PortalSession",
    "Price",
    "Product",
    "Refund",
    "StripeEvent",
    "StripeEventAttempt",
    "Subscription",
    "SubscriptionDaily",
    "WebhookRejection",
]
