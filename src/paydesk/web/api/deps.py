"""Request-scoped dependencies: the unit of work, the gateway, the settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from paydesk.errors import InvalidInput, PaymentFailed, StripeUnavailable
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway

MAX_IDEMPOTENCY_KEY = 200


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def unit_of_work(request: Request) -> Iterator[Session]:
    """A session for the request: committed if the handler returns, rolled back if it raises.

    Domain services never commit; this is the one place an API request does. A
    declined payment is the exception that still commits: what was mirrored is
    Stripe's truth (the failed attempt exists there), and it must count in the
    payments list and the failure rate.
    """
    session: Session = request.app.state.sessions()
    try:
        yield session
        session.commit()
    except PaymentFailed:
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_gateway(request: Request) -> StripeGateway:
    """The Stripe gateway, or 503 when no Stripe key is configured."""
    gateway: StripeGateway | None = request.app.state.gateway
    if gateway is None:
        raise StripeUnavailable(
            "Stripe is not configured: set STRIPE_SECRET_KEY.", code="stripe_not_configured"
        )
    return gateway


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Repeat a request with the same key to get the same single result.",
        ),
    ] = None,
) -> str | None:
    """The caller's ``Idempotency-Key`` header, checked for size."""
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters.",
            field="Idempotency-Key",
        )
    return key


# scope="function": commit before the response is sent, so a client that got a 2xx
# (and its next request) always sees the change.
SessionDep = Annotated[Session, Depends(unit_of_work, scope="function")]
GatewayDep = Annotated[StripeGateway, Depends(get_gateway)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
