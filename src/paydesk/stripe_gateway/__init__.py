"""The boundary with Stripe: the only package that imports ``stripe``.

``build_gateway(settings)`` gives a ``StripeGateway``: every call Paydesk makes
to Stripe, returning plain dicts, with Stripe's errors translated into
Paydesk's (``paydesk.errors``) right here.
"""

from __future__ import annotations

from paydesk.stripe_gateway.gateway import StripeGateway, build_gateway, pinned_api_version

__all__ = ["StripeGateway", "build_gateway", "pinned_api_version"]
