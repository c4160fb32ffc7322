"""List objects with Stripe's cursor pagination."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.routing import Ctx

Json = dict[str, Any]


def paginate(ctx: Ctx, items: Iterable[Json], url: str | None = None) -> Json:
    """A ``{"object": "list", ...}`` page of ``items`` (given newest first).

    Honours ``limit`` (1-100, default 10), ``starting_after`` (older than that id)
    and ``ending_before`` (newer than that id).
    """
    limit = ctx.params.integer("limit")
    if limit is None:
        limit = 10
    elif not 1 <= limit <= 100:
        raise invalid_request(
            "This value must be greater than or equal to 1 and less than or equal to 100.",
            param="limit",
        )
    after = ctx.params.string("starting_after")
    before = ctx.params.string("ending_before")
    rows = list(items)
    if after is not None:
        index = _index_of(rows, after, "starting_after")
        page = rows[index + 1 : index + 1 + limit]
        has_more = index + 1 + limit < len(rows)
    elif before is not None:
        index = _index_of(rows, before, "ending_before")
        start = max(0, index - limit)
        page = rows[start:index]
        has_more = start > 0
    else:
        page = rows[:limit]
        has_more = len(rows) > limit
    return {
        "object": "list",
        "data": page,
        "has_more": has_more,
        "url": url or ctx.url_path,
    }


def _index_of(rows: list[Json], object_id: str, param: str) -> int:
    for i, row in enumerate(rows):
        if row.get("id") == object_id:
            return i
    raise invalid_request(
        f"Invalid {param}: no object with id '{object_id}' in this list", param=param
    )


def created_filter(ctx: Ctx, items: Iterable[Json], key: str = "created") -> Iterable[Json]:
    """Apply ``created[gt|gte|lt|lte]`` (or ``created=<ts>``) to ``items``."""
    raw = ctx.params.raw(key)
    if raw is None:
        return items
    if isinstance(raw, str):
        exact = ctx.params.required_integer(key)
        return (o for o in items if o[key] == exact)
    bounds = ctx.params.sub(key)
    assert bounds is not None
    gt, gte = bounds.integer("gt"), bounds.integer("gte")
    lt, lte = bounds.integer("lt"), bounds.integer("lte")

    def keep(obj: Json) -> bool:
        value = obj[key]
        return not (
            (gt is not None and value <= gt)
            or (gte is not None and value < gte)
            or (lt is not None and value >= lt)
            or (lte is not None and value > lte)
        )

    return (o for o in items if keep(o))


def matching(ctx: Ctx, items: Iterable[Json], *keys: str) -> Iterable[Json]:
    """Keep objects whose field equals each given string parameter of the same
    name (``?customer=cus_…&payment_intent=pi_…``); absent parameters don't filter."""
    wanted = [(k, v) for k in keys if (v := ctx.params.string(k)) is not None]
    if not wanted:
        return items
    return (o for o in items if all(o.get(k) == v for k, v in wanted))
