"""The in-memory state of one sandbox instance.

Everything lives on one :class:`SandboxState`: objects per type, private
per-object data that is not part of Stripe's shape, events, idempotency records and
the sandbox clock. Handlers run on the server's event loop one at a time and never
await while mutating, so no locks are needed.
"""

from __future__ import annotations

import os
import random
import string
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson

from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.errors import resource_missing
from paydesk_sandbox.faults import FaultInjector

Json = dict[str, Any]
# Registered through Router.on / Router.expandable and installed by create_app.
Listener = Callable[["SandboxState", Json], None]
Expander = Callable[["SandboxState", Json], Any]


class Deliverer(Protocol):
    """What ``emit`` hands events to (``webhooks.WebhookDeliverer``; attached by the
    app's lifespan, so this module need not import the delivery machinery)."""

    log: deque[Json]  # the delivery attempts, oldest first (GET /_sandbox/deliveries)

    def submit(self, event: Json) -> None:
        """Queue ``event`` for every enabled endpoint that wants it."""

    def owed_pairs(self) -> list[tuple[str, str]]:
        """(endpoint id, event id) of every delivery not yet made, for the snapshot."""

    def failing(self) -> list[Json]:
        """The deliveries whose last attempt failed (GET /_sandbox/deliveries)."""


_ALPHABET = string.ascii_letters + string.digits
# Maps each random byte to an id character (the slight bias is irrelevant for ids);
# translate() on random bytes is ~20x faster than random.choices.
_ID_TABLE = bytes(ord(_ALPHABET[i % len(_ALPHABET)]) for i in range(256))

# Stripe id prefixes per object type; ids are prefix + "_" + random characters.
ID_LENGTHS: dict[str, int] = {"cus": 14, "prod": 14, "evt": 24, "req": 14, "whsec": 32}


def clone(obj: Json) -> Json:
    """A deep copy of a JSON object (orjson round trip: much faster than deepcopy)."""
    return orjson.loads(orjson.dumps(obj))  # type: ignore[no-any-return]


def changed_attributes(before: Json, after: Json) -> Json:
    """``previous_attributes``: the old values of top-level fields that changed
    (for hashes, only their changed keys, as Stripe reports metadata)."""
    previous: Json = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            previous[key] = {
                k: old.get(k) for k in old.keys() | new.keys() if old.get(k) != new.get(k)
            }
        else:
            previous[key] = old
    return previous


class SandboxState:
    """Object store, id generator, clock, events and scheduling of one instance."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.rng = random.Random(self.config.seed)  # noqa: S311 - ids, not secrets
        self.objects: dict[str, dict[str, Json]] = {}
        self.private: dict[str, Json] = {}
        self.idempotency: dict[str, tuple[str, int, bytes]] = {}
        self.clock_offset = 0
        # The request being handled (set by the dispatcher) so events can carry it.
        self.current_request: Json | None = None
        self.deliverer: Deliverer | None = None
        # Deliveries owed when the snapshot was written, resent by the next deliverer.
        self.owed_deliveries: list[tuple[str, str]] = []
        self.listeners: dict[str, list[Listener]] = {}
        self.expanders: dict[tuple[str, str], Expander] = {}
        self._pending_calls: list[tuple[float, Callable[[], None]]] = []
        self._loop_call_later: Callable[[float, Callable[[], None]], None] | None = None
        # Fault injection for /v1 requests (off unless config.faults.share > 0); kept by reset().
        self.faults = FaultInjector(self.config.faults)

    # ---- ids and time -------------------------------------------------------
    def new_id(self, prefix: str, length: int | None = None) -> str:
        """A fresh id such as ``cus_Abc123...`` (Stripe's prefixes)."""
        n = length or ID_LENGTHS.get(prefix, 24)
        return prefix + "_" + self.rng.randbytes(n).translate(_ID_TABLE).decode()

    def now(self) -> int:
        """The sandbox clock: Unix seconds, shiftable with ``clock_offset``."""
        return int(time.time()) + self.clock_offset

    def now_for_customer(self, customer_id: str | None) -> int:
        """Frozen time of the customer's test clock if it has one, else :meth:`now`."""
        if customer_id:
            customer = self.store("customer").get(customer_id)
            clock_id = customer.get("test_clock") if customer else None
            if isinstance(clock_id, str):
                clock = self.store("test_helpers.test_clock").get(clock_id)
                if clock is not None:
                    return int(clock["frozen_time"])
        return self.now()

    # ---- objects ------------------------------------------------------------
    def store(self, object_type: str) -> dict[str, Json]:
        """The id → object dict of ``object_type`` (insertion order = creation order)."""
        bucket = self.objects.get(object_type)
        if bucket is None:
            bucket = self.objects[object_type] = {}
        return bucket

    def add(self, obj: Json) -> Json:
        """Store a new object under its ``object`` type and return it."""
        self.store(obj["object"])[obj["id"]] = obj
        return obj

    def get(
        self, object_type: str, object_id: str, *, label: str | None = None, param: str = "id"
    ) -> Json:
        """The object or a 404 ``No such <label>: '<id>'``."""
        obj = self.objects.get(object_type, {}).get(object_id)
        if obj is None:
            raise resource_missing(label or object_type, object_id, param=param)
        return obj

    def find(self, object_id: str) -> Json | None:
        """Any object by id, whatever its type (used by ``expand[]``)."""
        for bucket in self.objects.values():
            obj = bucket.get(object_id)
            if obj is not None:
                return obj
        return None

    def private_of(self, object_id: str) -> Json:
        """Sandbox-only data attached to an object (never sent to clients)."""
        data = self.private.get(object_id)
        if data is None:
            data = self.private[object_id] = {}
        return data

    def iter_newest_first(self, object_type: str) -> Iterator[Json]:
        """Objects of a type, newest first (Stripe's list order)."""
        return reversed(list(self.store(object_type).values()))

    # ---- events -------------------------------------------------------------
    def emit(self, event_type: str, obj: Json, previous_attributes: Json | None = None) -> Json:
        """Record an event (for ``/v1/events``), queue its webhook deliveries and
        call the in-process listeners registered for its type (``Router.on``)."""
        data: Json = {"object": clone(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = clone(previous_attributes)
        req = self.current_request
        event: Json = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": self.config.api_version,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": dict(req) if req else {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        self.add(event)
        if self.deliverer is not None:
            self.deliverer.submit(event)
        for listener in self.listeners.get(event_type, ()):
            listener(self, event)
        return event

    # ---- deferred work ------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the server loop after ``delay`` seconds ("shortly
        afterwards" transitions). Queued until a server loop is attached."""
        if self._loop_call_later is None:
            self._pending_calls.append((delay, callback))
        else:
            self._loop_call_later(delay, callback)

    def attach_loop(self, call_later: Callable[[float, Callable[[], None]], None]) -> None:
        """Bind deferred work to a running loop (done by the app's lifespan)."""
        self._loop_call_later = call_later
        pending, self._pending_calls = self._pending_calls, []
        for delay, callback in pending:
            call_later(delay, callback)

    # ---- reset and snapshot -------------------------------------------------
    def reset(self) -> None:
        """Forget every object, event and idempotency record."""
        self.objects.clear()
        self.private.clear()
        self.idempotency.clear()
        self.clock_offset = 0
        self.owed_deliveries = []

    def snapshot(self) -> bytes:
        """Serialized state (objects, private data, clock, webhook deliveries owed)."""
        owed = self.deliverer.owed_pairs() if self.deliverer is not None else []
        return orjson.dumps(
            {
                "objects": self.objects,
                "private": self.private,
                "clock_offset": self.clock_offset,
                "owed_deliveries": [*self.owed_deliveries, *owed],
                "saved_at": int(time.time()),
            }
        )

    def restore(self, raw: bytes) -> None:
        """Load what :meth:`snapshot` produced."""
        data = orjson.loads(raw)
        self.objects = data.get("objects", {})
        self.private = data.get("private", {})
        self.clock_offset = int(data.get("clock_offset", 0))
        self.owed_deliveries = [
            (str(endpoint), str(event)) for endpoint, event in data.get("owed_deliveries", [])
        ]

    def save(self, path: Path | None = None) -> Path | None:
        """Write the snapshot to ``path`` (default: the configured one), atomically:
        a temporary file beside it, flushed to disk, then renamed over the old one, so
        a crash mid-write leaves the previous snapshot whole."""
        target = path or self.config.snapshot_path
        if target is not None:
            data = self.snapshot()
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(target)
        return target

    def load(self, path: Path | None = None) -> bool:
        """Read the snapshot from ``path`` if it exists."""
        target = path or self.config.snapshot_path
        if target is None or not target.exists():
            return False
        self.restore(target.read_bytes())
        return True
