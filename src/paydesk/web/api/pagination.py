"""Keyset pagination over mirror tables: newest first, stable under inserts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from paydesk.db.models.base import StripeMirrorMixin
from paydesk.errors import InvalidInput

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
