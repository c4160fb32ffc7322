"""The sandbox's billing half: products, prices, subscriptions, invoices and test clocks.

Pure arithmetic (periods, prorations, invoice totals, dunning) lives in modules that
import nothing from the HTTP framework, so it can be unit-tested on its own; the
route modules wire it to the sandbox's state, events and payment functions.
"""

# Mounted by paydesk.sandbox.app after the core's own modules.
RESOURCE_MODULES: list[str] = [
    "paydesk.sandbox.billing.products",
    "paydesk.sandbox.billing.prices",
    "paydesk.sandbox.billing.subscriptions",
    "paydesk.sandbox.billing.subscription_updates",
    "paydesk.sandbox.billing.subscription_items",
    "paydesk.sandbox.billing.invoices",
    "paydesk.sandbox.billing.test_clocks",
    "paydesk.sandbox.billing.admin",
]
