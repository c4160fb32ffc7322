"""Fault injection: make a share of ``/v1`` requests fail the way Stripe sometimes does.

Kinds (one is drawn per faulted request):

- ``500``: an ``api_error`` answered at once; nothing was applied (the SDK retries).
- ``429``: a ``rate_limit`` error with ``Retry-After``; nothing was applied.
- ``timeout``: the request is applied, then the answer is held for ``hold_seconds``
  (longer than the client's timeout) or until the client hangs up.
- ``drop_after_apply``: the request is applied, then the connection is closed without
  an answer.

Applied requests go through the normal protocol, so an idempotent POST's result is
saved and a retry with the same ``Idempotency-Key`` gets the original result back
(``Idempotent-Replayed: true``), never a second object. ``/_sandbox`` routes are never
faulted. Configure at start (``SandboxConfig.faults``, ``paydesk sandbox --faults`` or
``PAYDESK_SANDBOX_FAULTS``) or at run time (``GET/PUT/DELETE /_sandbox/faults``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

KINDS = ("500", "429", "timeout", "drop_after_apply")
API_PREFIX = "/v1/"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Which requests fail and how. ``share`` 0 (the default) turns faults off."""

    share: float = 0.0
    kinds: tuple[str, ...] = KINDS
    seed: int | None = None
    # Only requests whose path starts with this (e.g. "/v1/refunds"); None: every /v1 path.
    path: str | None = None
    # Only these HTTP methods (e.g. ("POST",)); empty: every method.
    methods: tuple[str, ...] = ()
    hold_seconds: float = 35.0  # a timeout fault holds the answer this long at most
    retry_after: int = 1  # seconds, sent in a 429's Retry-After header

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError("faults: share must be between 0 and 1")
        if not self.kinds:
            raise ValueError("faults: at least one kind is needed")
        unknown = [kind for kind in self.kinds if kind not in KINDS]
        if unknown:
            raise ValueError(f"faults: unknown kind {unknown[0]!r} (known: {', '.join(KINDS)})")
        if self.hold_seconds < 0 or self.retry_after < 0:
            raise ValueError("faults: hold_seconds and retry_after must not be negative")
        if self.path is not None and not self.path.startswith("/v1"):
            raise ValueError("faults: path must start with /v1")

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON."""
        return {
            "share": self.share,
            "kinds": list(self.kinds),
            "seed": self.seed,
            "path": self.path,
            "methods": list(self.methods),
            "hold_seconds": self.hold_seconds,
            "retry_after": self.retry_after,
        }


def parse_kinds(raw: str | list[str]) -> tuple[str, ...]:
    """``"500,429"`` or ``["500", "429"]`` → ``("500", "429")`` (``all``: every kind)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    kinds = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    return KINDS if kinds == ("all",) else kinds


def apply_settings(config: FaultConfig, values: dict[str, Any]) -> FaultConfig:
    """``config`` with the given fields replaced (strings are parsed); ValueError if bad."""
    changes: dict[str, Any] = {}
    try:
        for name, value in values.items():
            if value is None:
                continue
            if name == "share":
                changes["share"] = float(value)
            elif name == "kinds":
                changes["kinds"] = parse_kinds(value)
            elif name == "seed":
                changes["seed"] = None if value in ("", "none") else int(value)
            elif name == "path":
                changes["path"] = str(value) or None
            elif name == "methods":
                items = value.split(",") if isinstance(value, str) else value
                changes["methods"] = tuple(m.strip().upper() for m in items if m.strip())
            elif name in ("hold_seconds", "hold"):
                changes["hold_seconds"] = float(value)
            elif name == "retry_after":
                changes["retry_after"] = int(value)
            else:
                raise ValueError(f"faults: unknown setting {name!r}")
    except (TypeError, ValueError) as exc:
        if str(exc).startswith("faults:"):
            raise
        raise ValueError(f"faults: bad value for {name}: {value!r}") from exc
    return replace(config, **changes)


def parse_spec(spec: str) -> FaultConfig:
    """A config from ``share=0.3;kinds=500,429;seed=7;path=/v1/refunds;methods=POST;hold=35``.

    A bare number is the share (``"0.3"``: 30% of requests, every kind).
    """
    spec = spec.strip()
    if not spec:
        return FaultConfig()
    values: dict[str, Any] = {}
    for part in spec.replace(" ", ";").split(";"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            name, value = "share", name
        values[name.strip()] = value.strip()
    return apply_settings(FaultConfig(), values)


@dataclass
class FaultInjector:
    """Draws faults for requests and counts what it injected (one per sandbox)."""

    config: FaultConfig = field(default_factory=FaultConfig)
    counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0  # /v1 requests seen while faults were on and the path matched
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)  # noqa: S311 - test faults, not secrets
        self.counts = dict.fromkeys(KINDS, 0) | self.counts

    def configure(self, config: FaultConfig) -> None:
        """Use ``config`` from now on (a seed restarts the draw sequence)."""
        reseed = config.seed is not None and (
            config.seed != self.config.seed or self.config.share == 0
        )
        self.config = config
        if reseed:
            self.rng = random.Random(config.seed)  # noqa: S311

    def clear(self) -> None:
        """Faults off; counters back to zero."""
        self.config = FaultConfig()
        self.counts = dict.fromkeys(KINDS, 0)
        self.requests = 0

    def describe(self) -> dict[str, Any]:
        """Configuration and counters as JSON (``GET /_sandbox/faults``)."""
        return {
            "object": "sandbox.faults",
            **self.config.describe(),
            "requests": self.requests,
            "injected": sum(self.counts.values()),
            "counts": dict(self.counts),
        }

    def draw(self, method: str, path: str) -> str | None:
        """The fault for a ``method`` request to ``path``, or None."""
        config = self.config
        if config.share <= 0 or not path.startswith(API_PREFIX):
            return None
        if config.path is not None and not path.startswith(config.path):
            return None
        if config.methods and method.upper() not in config.methods:
            return None
        self.requests += 1
        if self.rng.random() >= config.share:
            return None
        kind = config.kinds[0] if len(config.kinds) == 1 else self.rng.choice(config.kinds)
        self.counts[kind] += 1
        return kind


class FaultMiddleware:
    """ASGI middleware in front of the sandbox's routes that injects the drawn fault."""

    def __init__(self, app: App, injector: FaultInjector, new_request_id: Callable[[], str]):
        self.app = app
        self.injector = injector
        self.new_request_id = new_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = self.injector.draw(scope["method"], scope["path"])
        if kind is None:
            await self.app(scope, receive, send)
        elif kind == "500":
            await self._error(
                send, 500, "api_error", "An unknown error occurred (sandbox fault injection)."
            )
        elif kind == "429":
            await self._error(
                send,
                429,
                "invalid_request_error",
                "Too many requests hit the API too quickly. We recommend an exponential "
                "backoff of your requests (sandbox fault injection).",
                code="rate_limit",
                headers={"retry-after": str(self.injector.config.retry_after)},
            )
        else:
            messages: list[Message] = []

            async def keep(message: Message) -> None:
                messages.append(message)

            await self.app(scope, receive, keep)  # applied, and saved for idempotent replay
            if kind == "timeout":
                await self._hold(receive, self.injector.config.hold_seconds)
                for message in messages:
                    await send(message)  # ignored by the server if the client has gone
            else:
                await self._drop(receive, send, messages)

    async def _error(
        self,
        send: Send,
        status: int,
        error_type: str,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        request_id = self.new_request_id()
        error: dict[str, Any] = {"type": error_type, "message": message}
        if code:
            error["code"] = code
        body = orjson.dumps({"error": error})
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"request-id", request_id.encode()),
        ]
        raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _hold(receive: Receive, seconds: float) -> None:
        """Wait ``seconds``, or less if the client disconnects first."""

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(disconnected(), timeout=seconds)

    @staticmethod
    async def _drop(receive: Receive, send: Send, messages: list[Message]) -> None:
        """Close the connection without answering."""
        # uvicorn's receive is a bound method of the request cycle, which holds the
        # connection's transport: abort it so the client sees the connection drop.
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "abort"):
            transport.abort()
            for _ in range(3):  # let the server notice, so it does not answer a 500
                await asyncio.sleep(0)
            return
        # Another server: start the answer and never finish it (the server then closes).
        for message in messages:
            if message["type"] == "http.response.start":
                await send(message)
                return
