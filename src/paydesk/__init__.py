"""Paydesk: payment gateway and Admin Center backend on Stripe."""

__version__ = "0.1.0"
