"""Sandbox-only billing routes (no Stripe equivalent, no auth), like ``/_sandbox/*``.

- ``GET /_sandbox/billing/settings``: the effective billing settings.
- ``POST /_sandbox/billing/settings`` ``retries_exhausted=canceled|unpaid``,
  ``retry_days=3,5,7``: change them for this instance (see :mod:`billing.settings`).
"""

from __future__ import annotations

from paydesk_sandbox.billing import settings
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json

router = Router()


@router.internal("GET", "/_sandbox/billing/settings")
def show(ctx: Ctx) -> Json:
    return {"object": "sandbox.billing_settings", **settings.current(ctx.state)}


@router.internal("POST", "/_sandbox/billing/settings")
def change(ctx: Ctx) -> Json:
    values = settings.update(
        ctx.state,
        retries_exhausted=ctx.params.string("retries_exhausted"),
        retry_days=ctx.params.string("retry_days"),
    )
    return {"object": "sandbox.billing_settings", **values}
