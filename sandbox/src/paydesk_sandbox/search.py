"""Stripe's search query language, for ``/v1/<resource>/search``.

Supported: clauses ``field:value`` (exact), ``field~"text"`` (substring, at least 3
characters), ``field>n`` / ``>=`` / ``<`` / ``<=`` (numbers), ``-field:value``
(negation), ``metadata["key"]:"value"``, ``field:null``; joined by ``AND`` or by
``OR`` (not both, at most 10 clauses). Strings are quoted with ' or ". Results are
newest first and paginated with an opaque ``page`` token, like Stripe's
``search_result`` objects. (Real Stripe's search lags writes by up to a minute; the
sandbox's doesn't.)
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.routing import Ctx

Json = dict[str, Any]
_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?(?P<field>metadata\[(?P<q>['"])(?P<key>[^'"]+)(?P=q)\]|[a-z_.0-9]+)
        \s*(?P<op>:|~|>=|<=|>|<)\s*
        (?:(?P<sq>['"])(?P<text>.*?)(?P=sq)|(?P<bare>[^\s]+))\s*""",
    re.VERBOSE,
)
_JOIN = re.compile(r"\s+(AND|OR)\s+")


@dataclass(frozen=True, slots=True)
class Clause:
    """One condition of a query."""

    field: str  # dotted path, or "metadata" with ``key``
    key: str | None
    op: str
    value: str | None  # None for ``null``
    negate: bool

    def test(self, obj: Json) -> bool:
        """Whether ``obj`` satisfies this clause."""
        return self.negate != self._test(obj)

    def _test(self, obj: Json) -> bool:
        actual = obj.get("metadata", {}).get(self.key) if self.key else _path(obj, self.field)
        if self.value is None:
            return actual is None
        if self.op == ":":
            if isinstance(actual, bool):
                return str(actual).lower() == self.value.lower()
            return actual is not None and str(actual) == self.value
        if self.op == "~":
            return isinstance(actual, str) and self.value.lower() in actual.lower()
        if not isinstance(actual, int | float) or isinstance(actual, bool):
            return False
        number = float(self.value)
        return {
            ">": actual > number,
            ">=": actual >= number,
            "<": actual < number,
            "<=": actual <= number,
        }[self.op]


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def parse(query: str, fields: frozenset[str], resource: str) -> tuple[list[Clause], str]:
    """Clauses and their joiner (``AND``/``OR``); 400 for what Stripe would reject."""
    joins = set(_JOIN.findall(query))
    if len(joins) > 1:
        raise invalid_request("Queries cannot combine AND and OR.", param="query")
    parts = _JOIN.split(query)[::2]
    if not query.strip() or len(parts) > 10:
        raise invalid_request("A query needs between 1 and 10 clauses.", param="query")
    clauses = []
    for part in parts:
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise invalid_request(f"Invalid search query clause: {part.strip()!r}", param="query")
        key = match["key"]
        field = "metadata" if key else match["field"]
        if field not in fields:
            raise invalid_request(
                f"Field `{field}` is an unsupported search field for resource `{resource}`.",
                param="query",
            )
        text = match["text"] if match["sq"] else match["bare"]
        value = None if (match["bare"] == "null") else text
        if match["op"] == "~" and (value is None or len(value) < 3):
            raise invalid_request(
                "Substring (~) searches need at least 3 characters.", param="query"
            )
        if match["op"] in (">", ">=", "<", "<=") and not _is_number(value):
            raise invalid_request(f"Range queries need a number, not {value!r}.", param="query")
        clauses.append(Clause(field, key, match["op"], value, bool(match["neg"])))
    return clauses, joins.pop() if joins else "AND"


def _is_number(value: str | None) -> bool:
    try:
        float(value or "")
    except ValueError:
        return False
    return True


def search(ctx: Ctx, items: Iterable[Json], fields: frozenset[str], resource: str) -> Json:
    """A ``search_result`` page of ``items`` (newest first) matching ``query``."""
    clauses, joiner = parse(ctx.params.required_string("query"), fields, resource)
    combine: Callable[[Iterable[bool]], bool] = all if joiner == "AND" else any
    hits = [obj for obj in items if combine(c.test(obj) for c in clauses)]
    limit = ctx.params.integer("limit")
    limit = 10 if limit is None else limit
    if not 1 <= limit <= 100:
        raise invalid_request(
            "This value must be greater than or equal to 1 and less than or equal to 100.",
            param="limit",
        )
    offset = _offset(ctx.params.string("page"))
    page = hits[offset : offset + limit]
    has_more = offset + limit < len(hits)
    return {
        "object": "search_result",
        "data": page,
        "has_more": has_more,
        "next_page": _token(offset + limit) if has_more else None,
        "total_count": len(hits),
        "url": ctx.url_path,
    }


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "offset":
            return int(value)
    except ValueError:
        pass
    raise invalid_request("Invalid page token.", param="page")
