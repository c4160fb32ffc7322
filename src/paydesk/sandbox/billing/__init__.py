"""The sandbox's billing half: products, prices, subscriptions, invoices and test clocks.

Pure arithmetic (periods, prorations, invoice totals, dunning) lives in modules that
import nothing from the HTTP framework, so it can be unit-tested on its own; the
route modules wire it to the sandbox's state, events and payment functions.
"""
