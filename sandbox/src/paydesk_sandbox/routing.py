"""How resource modules declare their endpoints.

A resource module creates ``router = Router()`` and decorates plain synchronous
functions ``handler(ctx) -> dict``; :mod:`paydesk_sandbox.app` mounts every router
listed in its ``ROUTERS``. ``params`` lists the top-level parameters the
endpoint takes: anything else is answered with ``parameter_unknown`` before the
handler runs (``expand`` is always allowed; list routes also take ``limit``,
``starting_after`` and ``ending_before``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from paydesk_sandbox.multipart import UploadedFile
from paydesk_sandbox.params import Params
from paydesk_sandbox.state import Expander, Listener, SandboxState

Json = dict[str, Any]
LIST_PARAMS = frozenset({"limit", "starting_after", "ending_before"})


@dataclass(slots=True)
class Ctx:
    """Everything a handler needs about the current request."""

    state: SandboxState
    params: Params
    path: dict[str, str]
    request_id: str
    idempotency_key: str | None
    request: Request | None
    method: str
    url_path: str
    files: dict[str, UploadedFile] = field(default_factory=dict)  # multipart file parts

    @property
    def base_url(self) -> str:
        """Where clients reach this sandbox, e.g. ``http://127.0.0.1:12111``."""
        if self.request is None:
            return "http://127.0.0.1:12111"
        return str(self.request.base_url).rstrip("/")

    @property
    def now(self) -> int:
        """The sandbox clock (Unix seconds)."""
        return self.state.now()


Handler = Callable[[Ctx], "Json | Response"]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One endpoint: ``method`` + Starlette ``path`` (``/v1/customers/{id}``)."""

    method: str
    path: str
    handler: Handler
    params: frozenset[str] | None  # None: accept anything (sandbox-only routes)
    authenticated: bool = True


class Router:
    """Collects a module's routes via decorators."""

    def __init__(self) -> None:
        self.routes: list[RouteSpec] = []
        self.listeners: list[tuple[str, Listener]] = []
        self.expanders: dict[tuple[str, str], Expander] = {}

    def on(self, event_type: str) -> Callable[[Listener], Listener]:
        """Call ``fn(state, event)`` synchronously whenever ``event_type`` is emitted
        (e.g. billing marks an invoice paid on ``payment_intent.succeeded``)."""

        def decorator(fn: Listener) -> Listener:
            self.listeners.append((event_type, fn))
            return fn

        return decorator

    def expandable(self, object_type: str, field: str) -> Callable[[Expander], Expander]:
        """Make ``expand[]=<field>`` on ``object_type`` call ``fn(state, obj)`` (for
        includable fields that are not ids, like ``invoice.confirmation_secret``)."""

        def decorator(fn: Expander) -> Expander:
            self.expanders[(object_type, field)] = fn
            return fn

        return decorator

    def _add(
        self,
        method: str,
        path: str,
        params: Iterable[str] | None,
        authenticated: bool,
        is_list: bool = False,
    ) -> Callable[[Handler], Handler]:
        allowed: frozenset[str] | None = None
        if params is not None:
            allowed = frozenset(params) | {"expand"} | (LIST_PARAMS if is_list else frozenset())

        def decorator(handler: Handler) -> Handler:
            self.routes.append(RouteSpec(method, path, handler, allowed, authenticated))
            return handler

        return decorator

    def get(self, path: str, params: Iterable[str] | None = ()) -> Callable[[Handler], Handler]:
        """A retrieve endpoint (``GET``)."""
        return self._add("GET", path, params, True)

    def list(self, path: str, params: Iterable[str] | None = ()) -> Callable[[Handler], Handler]:
        """A list endpoint (``GET``; pagination parameters allowed)."""
        return self._add("GET", path, params, True, is_list=True)

    def post(self, path: str, params: Iterable[str] | None = ()) -> Callable[[Handler], Handler]:
        """A create/update/action endpoint (``POST``; idempotency applies)."""
        return self._add("POST", path, params, True)

    def delete(self, path: str, params: Iterable[str] | None = ()) -> Callable[[Handler], Handler]:
        """A delete endpoint (``DELETE``)."""
        return self._add("DELETE", path, params, True)

    def internal(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """A sandbox-only route (``/_sandbox/...``): no auth, no param check."""
        return self._add(method, path, None, False)
