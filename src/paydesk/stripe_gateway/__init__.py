"""The boundary with Stripe: the only package that imports ``stripe``."""

from __future__ import annotations


def pinned_api_version() -> str:
    """The Stripe API version the installed SDK pins (sent on every request)."""
    import stripe

    return str(stripe.api_version)
