"""The inbox's group commit, straight (no HTTP): what goes in comes back out, once."""

from __future__ import annotations

import asyncio

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from paydesk.db.models import StripeEvent
from paydesk.webhooks.events import MAX_CREATED, MIN_CREATED, ParsedEvent, parse_event
from paydesk.webhooks.receive import Inbox


def _event(number: int, **fields: object) -> ParsedEvent:
    body = {
        "id": f"evt_inbox_{number}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1_700_000_000 + number,
        "api_version": "2025-09-30.clover",
        "livemode": False,
        "data": {"object": {"id": f"pi_inbox_{number}", "object": "payment_intent"}},
        **fields,
    }
    return parse_event(orjson.dumps(body))


async def _store_concurrently(engine: Engine, events: list[ParsedEvent]) -> list[bool]:
    inbox = Inbox(engine)
    try:
        # Concurrent stores share batches: this is the path every delivery takes.
        return list(await asyncio.gather(*(inbox.store(event) for event in events)))
    finally:
        await inbox.close()


def test_every_column_round_trips_through_a_batch(engine: Engine) -> None:
    unusual = [
        # No api_version, no object id: the NULL elements of the array parameters.
        _event(1, api_version=None, data={"object": {"object": "balance"}}),
        # Non-ASCII text, escaped NUL, a live event, the largest and smallest timestamps
        # accepted (beyond them an event is refused before it is batched).
        _event(2, type="customer.updated", livemode=True, created=MAX_CREATED),
        _event(3, created=MIN_CREATED, data={"object": {"id": "cus_ü", "name": "Zoë \u0000 ☃"}}),
    ]
    ordinary = [_event(number) for number in range(4, 40)]
    events = unusual + ordinary

    results = asyncio.run(_store_concurrently(engine, events))

    assert results == [True] * len(events)
    with Session(engine) as session:
        rows = {row.event_id: row for row in session.scalars(select(StripeEvent))}
    assert len(rows) == len(events)
    for event in events:
        row = rows[event.event_id]
        assert (row.type, row.api_version, row.created, row.livemode, row.object_id) == (
            event.type,
            event.api_version,
            event.created,
            event.livemode,
            event.object_id,
        )
        assert row.payload == event.payload
        assert (row.status, row.attempts, row.source) == ("pending", 0, "webhook")
    assert rows["evt_inbox_1"].api_version is None
    assert rows["evt_inbox_1"].object_id is None
    assert rows["evt_inbox_3"].object_id == "cus_ü"


def test_copies_in_one_batch_and_across_batches_are_stored_once(engine: Engine) -> None:
    first = [_event(number) for number in range(10)]
    again = [_event(number) for number in range(5, 15)] + [_event(14)]

    assert asyncio.run(_store_concurrently(engine, first)) == [True] * 10
    results = asyncio.run(_store_concurrently(engine, again))

    # 5–9 were stored by the first run; 10–14 are new, and the second copy of 14 is not.
    assert results == [False] * 5 + [True] * 5 + [False]
    with Session(engine) as session:
        ids = list(session.scalars(select(StripeEvent.event_id)))
    assert sorted(ids) == sorted(f"evt_inbox_{number}" for number in range(15))
