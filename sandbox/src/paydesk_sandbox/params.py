"""Form-encoded parameters exactly as stripe-python sends them.

``a[b][c]=1`` becomes ``{"a": {"b": {"c": "1"}}}``; ``items[0][price]=x`` and
``expand[]=y`` become lists. Every leaf is a string, as on the wire; :class:`Params`
converts and validates them with Stripe's error messages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from paydesk_sandbox.errors import invalid_request, parameter_missing

Json = dict[str, Any]


def parse_form(raw: str) -> Json:
    """Decode a query string or ``application/x-www-form-urlencoded`` body."""
    root: Json = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        _assign(root, key, value)
    return _listify(root)  # type: ignore[no-any-return]


def _assign(root: Json, key: str, value: str) -> None:
    bracket = key.find("[")
    if bracket <= 0:
        root[key] = value
        return
    parts = [key[:bracket], *key[bracket + 1 : -1].split("][")]
    node: Any = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":  # "expand[]" style append
            if not isinstance(node, list):
                return
            if last:
                node.append(value)
                return
            child: Any = {}
            node.append(child)
            node = child
            continue
        if not isinstance(node, dict):
            return
        if last:
            node[part] = value
            return
        nxt = node.get(part)
        if not isinstance(nxt, dict | list):
            nxt = [] if parts[i + 1] == "" else {}
            node[part] = nxt
        node = nxt


def _listify(node: Any) -> Any:
    """Turn dicts keyed "0", "1", ... into lists, recursively."""
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_listify(node[k]) for k in sorted(node, key=int)]
        return {k: _listify(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


class Params:
    """Typed access to one level of parameters; ``prefix`` names nested errors."""

    __slots__ = ("data", "prefix")

    def __init__(self, data: Json, prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        """The parameter's wire name, e.g. ``card[number]``."""
        return f"{self.prefix}[{key}]" if self.prefix else key

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        """The parsed value (string, dict or list) or None."""
        return self.data.get(key)

    def string(self, key: str, *, required: bool = False) -> str | None:
        """A string; an empty string means "unset" and gives None."""
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise parameter_missing(self.name(key))
            return None
        if not isinstance(value, str):
            raise invalid_request(f"Invalid string: {value!r}", param=self.name(key))
        return value

    def required_string(self, key: str) -> str:
        """A string that must be present."""
        value = self.string(key, required=True)
        assert value is not None
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        """An integer (``amount=2000``)."""
        value = self.string(key, required=required)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise invalid_request(f"Invalid integer: {value}", param=self.name(key)) from None
        if minimum is not None and number < minimum:
            raise invalid_request(
                f"Invalid {self.name(key)}: must be at least {minimum}", param=self.name(key)
            )
        return number

    def required_integer(self, key: str, *, minimum: int | None = None) -> int:
        """An integer that must be present."""
        value = self.integer(key, required=True, minimum=minimum)
        assert value is not None
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool | None:
        """``true``/``false`` as the SDK sends booleans."""
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if value in ("true", "True", "1"):
            return True
        if value in ("false", "False", "0"):
            return False
        raise invalid_request(f"Invalid boolean: {value}", param=self.name(key))

    def enum(self, key: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
        """A string out of ``choices``."""
        value = self.string(key, required=required)
        if value is not None and value not in choices:
            raise invalid_request(
                f"Invalid {self.name(key)}: must be one of {', '.join(choices)}",
                param=self.name(key),
            )
        return value

    def sub(self, key: str) -> Params | None:
        """A nested hash (``card[...]``) as Params, or None if absent/emptied."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid object: {self.name(key)}", param=self.name(key))
        return Params(value, self.name(key))

    def array(self, key: str) -> list[Any] | None:
        """An array (``expand[]``, ``items[0][...]``); a bare string is a 1-item list."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [value]
        raise invalid_request(f"Invalid array: {self.name(key)}", param=self.name(key))

    def strings(self, key: str) -> list[str] | None:
        """An array of strings."""
        values = self.array(key)
        if values is None:
            return None
        if not all(isinstance(v, str) for v in values):
            raise invalid_request(
                f"Invalid array of strings: {self.name(key)}", param=self.name(key)
            )
        return values

    def metadata(
        self, current: dict[str, str] | None = None, key: str = "metadata"
    ) -> dict[str, str]:
        """Stripe's metadata merge: keys set, ``metadata[k]=`` unsets k,
        ``metadata=`` clears everything."""
        result = dict(current or {})
        value = self.data.get(key)
        if value is None:
            return result
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid_request("Invalid metadata: must be a hash", param=self.name(key))
        for k, v in value.items():
            if not isinstance(v, str):
                raise invalid_request(
                    "Metadata values must be strings", param=f"{self.name(key)}[{k}]"
                )
            if v == "":
                result.pop(k, None)
            else:
                result[k] = v
        return result
