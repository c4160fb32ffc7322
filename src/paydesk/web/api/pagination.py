"""Keyset pagination over mirror tables: newest first, stable under inserts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator
from sqlalchemy import Select
from sqlalchemy.orm import Session

from paydesk.db.models.base import StripeMirrorMixin
from paydesk.queries import CURSOR_PATTERN, decode_cursor, encode_cursor, page
from paydesk.web.api.schemas import Page

MAX_LIMIT = 100
Row = TypeVar("Row", bound=StripeMirrorMixin)
__all__ = ["CURSOR_PATTERN", "decode_cursor", "encode_cursor", "page", "page_of"]


# Query parameters every list endpoint shares.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN, description="`next_cursor` of a page")]

# RFC 3339 date-time, as the OpenAPI ``date-time`` format says: a date, a time and an
# offset. Pydantic alone would also take a number of seconds ("0.5"), a bare date or a
# time without offset (read in the server's zone); those are refused with a 422.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with an offset, e.g. 2026-01-31T00:00:00Z")
    return value


# No Stripe object predates the epoch or lives in year 9000: bounds outside that window
# mean the same as its ends, and keep date arithmetic (a window before ``end``) in range.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _within_range(value: datetime) -> datetime:
    return min(max(value, EARLIEST), LATEST)


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_within_range)]
CreatedGte = Annotated[Timestamp | None, Query(description="Created at or after")]
CreatedLt = Annotated[Timestamp | None, Query(description="Created before")]

Out = TypeVar("Out", bound=BaseModel)


def page_of(
    session: Session,
    model: type[Row],
    query: Select[Any],
    cursor: str | None,
    limit: int,
    out: type[Out],
) -> Page[Out]:
    """One page of ``query`` rendered as ``out`` models."""
    rows, next_cursor = page(session, model, query, cursor, limit)
    return Page[out](  # type: ignore[valid-type]  # a runtime-parametrised generic
        data=[out.model_validate(row) for row in rows],
        has_more=next_cursor is not None,
        next_cursor=next_cursor,
    )
