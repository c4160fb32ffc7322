"""Throughput of the Paydesk Stripe sandbox versus localstripe (see bench/README.md)."""
