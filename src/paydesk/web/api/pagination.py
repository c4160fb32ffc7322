"""Keyset pagination over mirror tables: newest first, stable under inserts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from paydesk.db.models.base import StripeMirrorMixin
from paydesk.errors import InvalidInput
from paydesk.web.api.schemas import Page

MAX_LIMIT = 100
Row = TypeVar("Row", bound=StripeMirrorMixin)


def encode_cursor(row: Any) -> str:
    """An opaque cursor after ``row`` (its creation time and primary key)."""
    return base64.urlsafe_b64encode(f"{row.stripe_created}:{row.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int]:
    """``(stripe_created, id)`` from a cursor, or ``InvalidInput`` naming ``cursor``."""
    try:
        created, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        return int(created), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("The cursor is not one this API returned.", field="cursor") from exc


def page(
    session: Session, model: type[Row], query: Select[Any], cursor: str | None, limit: int
) -> tuple[Sequence[Row], str | None]:
    """One page of ``query`` (newest first) and the cursor of the next page, if any."""
    column_created = model.stripe_created
    column_id = model.id  # type: ignore[attr-defined]  # every mirror table has an int id
    if cursor:
        created, row_id = decode_cursor(cursor)
        query = query.where(
            or_(column_created < created, and_(column_created == created, column_id < row_id))
        )
    rows: Sequence[Row] = session.scalars(
        query.order_by(column_created.desc(), column_id.desc()).limit(limit + 1)
    ).all()
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1])
    return rows, None


# Query parameters every list endpoint shares.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of a page")]
CreatedGte = Annotated[datetime | None, Query(description="Created at or after")]
CreatedLt = Annotated[datetime | None, Query(description="Created before")]

Out = TypeVar("Out", bound=BaseModel)


def created_between(
    query: Select[Any], model: type[StripeMirrorMixin], gte: datetime | None, lt: datetime | None
) -> Select[Any]:
    """``query`` narrowed to objects Stripe created in ``[gte, lt)``."""
    if gte is not None:
        query = query.where(model.stripe_created >= int(gte.timestamp()))
    if lt is not None:
        query = query.where(model.stripe_created < int(lt.timestamp()))
    return query


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
