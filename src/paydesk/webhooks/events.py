"""Webhook events: a received one, parsed just enough to store and route it, and the
types Paydesk subscribes to (``paydesk webhooks setup``, doctor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from paydesk.errors import PaydeskError

# Unix seconds from 1970 to the year 2242: far beyond any real event, far inside int8.
MIN_CREATED = 0
MAX_CREATED = 2**33


class NotAnEvent(PaydeskError):
    """The body is not a Stripe event (bad JSON or missing fields); answered with 400."""

    code = "not_an_event"


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """What the inbox row needs from an event; ``payload`` is the body verbatim."""

    event_id: str
    type: str
    api_version: str | None
    created: int
    livemode: bool
    object_id: str | None
    payload: str

    def row(self, source: str = "webhook") -> dict[str, Any]:
        """The ``stripe_events`` columns for this event."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "api_version": self.api_version,
            "created": self.created,
            "livemode": self.livemode,
            "object_id": self.object_id,
            "payload": self.payload,
            "source": source,
        }


def parse_event(body: bytes | str) -> ParsedEvent:
    """Check that ``body`` is a Stripe event and extract its routing fields."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotAnEvent("The body is not valid JSON.") from exc
    return event_from_dict(data, body if isinstance(body, str) else body.decode("utf-8"))


def event_from_dict(data: Any, payload: str | None = None) -> ParsedEvent:
    """Like ``parse_event`` for an already decoded event (backfill, tests)."""
    if not isinstance(data, dict) or data.get("object") != "event":
        raise NotAnEvent("The body is not a Stripe event.")
    event_id = data.get("id")
    event_type = data.get("type")
    created = data.get("created")
    inner = data.get("data")
    if (
        not isinstance(event_id, str)
        or not event_id.startswith("evt_")
        or len(event_id) > 255
        or not isinstance(event_type, str)
        or not event_type
        or len(event_type) > 128
        or not isinstance(created, int)
        or not isinstance(inner, dict)
        or not isinstance(inner.get("object"), dict)
    ):
        raise NotAnEvent("The body lacks an event's id, type, created or data.object.")
    obj = inner["object"]
    object_id = obj.get("id")
    api_version = data.get("api_version")
    livemode = data.get("livemode", False)
    # Validated here, before the event joins a batch: a value the database cannot store
    # (a NUL in a PostgreSQL text column, an int8 overflow) would fail the whole batch,
    # and a created time far off (-2^63) would break the lag metric.
    if not MIN_CREATED <= created <= MAX_CREATED:
        raise NotAnEvent("The event's created time is out of range.")
    if not isinstance(livemode, bool):
        raise NotAnEvent("The event's livemode is not a boolean.")
    for value in (event_id, event_type, object_id, api_version):
        if value is not None and "\x00" in str(value):
            raise NotAnEvent("The event's id, type or object id contains a NUL character.")
    return ParsedEvent(
        event_id=event_id,
        type=event_type,
        api_version=str(api_version)[:64] if api_version else None,
        created=created,
        livemode=livemode,
        object_id=str(object_id)[:255] if object_id is not None else None,
        payload=payload if payload is not None else orjson.dumps(data).decode(),
    )


# The guide's seven events.
GUIDE_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "charge.refunded",
    "charge.dispute.created",
    # A renewal that needs the customer: they get a pay link by email (PAYDESK_SMTP_URL).
    "invoice.payment_action_required",
    "invoice.payment_failed",
)


def subscribed_events() -> list[str]:
    """The guide's events plus every type the mirror and the metrics apply (refunds,
    invoices incl. payment_action_required, customers, disputes, …), sorted."""
    # Imported here: the receive path imports this module and needs neither.
    from paydesk.stripe_gateway.gateway import webhook_event_types
    from paydesk.webhooks.handlers import handler_for

    handled = {name for name in webhook_event_types() if handler_for(name) is not None}
    return sorted(handled | set(GUIDE_EVENTS))
