"""A portal link for the demo's customer (``paydesk demo`` prints it next to the console)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from paydesk.auth import portal_sessions
from paydesk.billing.customers import ensure_customer
from paydesk.db.engine import session_factory
from paydesk.settings import Settings
from paydesk.stripe_gateway import build_gateway

DEMO_USER = "demo-portal-customer"
DEMO_EMAIL = "portal-demo@example.com"
# Long enough to copy from a terminal; still single use, like every portal link.
DEMO_LINK_LIFETIME = timedelta(hours=12)


def demo_portal_url(settings: Settings, engine: Engine, base_url: str) -> str:
    """A single-use portal link for the demo customer (created in Stripe on first run)."""
    with session_factory(engine)() as session:
        customer = ensure_customer(
            session, build_gateway(settings), user_id=DEMO_USER, email=DEMO_EMAIL
        )
        link = portal_sessions.create_link(
            session,
            settings,
            customer_id=customer.stripe_id,
            created_by="demo",
            lifetime=DEMO_LINK_LIFETIME,
        )
        session.commit()
    return portal_sessions.link_url(base_url, link)
