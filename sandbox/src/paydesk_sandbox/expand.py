"""``expand[]``: replace id fields by the objects they name.

Any field holding an id of a stored object can be expanded (the object is found
by id, whatever its type); paths may nest (``latest_charge.customer``) and go
through lists (``data.customer`` on list pages). Fields that are not ids but are
"includable" in Stripe (e.g. ``invoice.confirmation_secret``) are produced by a
function registered with ``Router.expandable(object_type, field)``.
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.state import SandboxState

Json = dict[str, Any]
MAX_DEPTH = 4


def expand(state: SandboxState, obj: Json, paths: list[str]) -> Json:
    """A copy of ``obj`` with every path in ``paths`` expanded (obj is not changed)."""
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise invalid_request(
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        obj = _expand(state, obj, parts, path)
    return obj


def _expand(state: SandboxState, obj: Json, parts: list[str], path: str) -> Json:
    head, rest = parts[0], parts[1:]
    expander = state.expanders.get((str(obj.get("object")), head))
    if head not in obj and expander is None:
        raise _cannot(path)
    value = obj.get(head)
    out = dict(obj)
    if isinstance(value, list):
        if not rest:
            raise _cannot(path)
        out[head] = [_expand(state, v, rest, path) if isinstance(v, dict) else v for v in value]
        return out
    if expander is not None:
        value = expander(state, obj)
    elif isinstance(value, str):
        found = state.find(value)
        if found is None:
            raise _cannot(path)
        value = found
    elif value is not None and not isinstance(value, dict):
        raise _cannot(path)
    if rest and isinstance(value, dict):
        value = _expand(state, value, rest, path)
    out[head] = value
    return out


def _cannot(path: str) -> Exception:
    return invalid_request(f"This property cannot be expanded ({path}).", param="expand")
