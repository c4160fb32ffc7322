"""The customer portal at ``/portal``: server-rendered pages over Stripe.js / Elements."""

from paydesk.web.portal.views import build_portal

__all__ = ["build_portal"]
