"""The sandbox's billing half: products, prices, subscriptions, invoices and test clocks.

Route modules (their routers are listed in :data:`paydesk_sandbox.app.BILLING_ROUTERS`):

- ``products``, ``prices`` — the catalog (lookup keys, ``product_data``).
- ``subscriptions`` (create, list), ``subscription_updates`` (price changes with
  prorations, cancel, pause, resume, pending updates), ``subscription_items``.
- ``invoices`` — invoices, invoice payments, ``create_preview``, and the listeners
  that settle invoices whose PaymentIntent a client confirmed; ``invoice_items``.
- ``coupons`` — coupons and promotion codes (limits, restrictions, redemption);
  ``discounts`` — coupons applied to subscriptions and invoices, and their amounts.
- ``test_clocks`` — ``/v1/test_helpers/test_clocks``; ``admin`` — ``/_sandbox/billing``.

Engine modules: ``invoicing`` (invoice lifecycle and payment attempts through the
core's PaymentIntents, via ``payments``), ``lifecycle`` (subscription state changes),
``clock_engine`` (what happens while time passes: renewals, finalization, retries,
trial ends, scheduled cancels), ``poller`` (the same for customers without a clock),
``preview``, ``outbox`` (held events for all-or-nothing operations), ``settings``.

Pure arithmetic with no framework imports, unit-tested on its own: ``periods``
(anchor-based period boundaries with month-end clamping), ``proration`` (integer
minor units), ``totals`` (invoice amounts and customer balance), ``dunning``.
``shapes`` builds objects with exactly the keys of Stripe's sample objects.
"""
