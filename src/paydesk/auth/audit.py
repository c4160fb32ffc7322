"""The audit log: append-only, hash-chained, filterable, exportable.

Each entry's digest is an HMAC (keyed by ``PAYDESK_SECRET_KEY``) over the previous
entry's digest and the entry's own fields, so editing, deleting or reordering any
entry — even by someone with write access to the database but not the key — breaks
the chain at that point; ``paydesk audit verify`` walks it. The database also
refuses UPDATE and DELETE on the table (triggers in migration 0003).

Entries are written in the caller's unit of work: a mutation and its audit entry
commit together or not at all. A mutation that fails is audited too, with
``outcome = "failure"`` and the error's code (``failure_details``): the web layer
writes that entry in a unit of work of its own, after the request's own has ended,
so the failure's rollback cannot take the entry with it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from paydesk.auth.keys import keyed_digest
from paydesk.db.models import AuditEntry
from paydesk.db.models.base import utcnow
from paydesk.errors import PaydeskError
from paydesk.settings import Settings

GENESIS = "0" * 64
# Serialises appends on PostgreSQL (SQLite's write lock already does).
_ADVISORY_LOCK = 7_240_307
SUCCESS = "success"
FAILURE = "failure"
OUTCOMES = (SUCCESS, FAILURE)
# Error details safe to keep: Stripe's request id and decline code name the attempt
# without saying anything about the card.
_KEPT_DETAILS = ("stripe_request_id", "decline_code", "payment_intent", "payment")
CSV_COLUMNS = ("id", "at", "actor", "action", "target", "outcome", "before", "after", "source")


def _json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _digest(settings: Settings, entry: AuditEntry) -> str:
    fields = [
        entry.previous_digest,
        _utc(entry.at).isoformat(),
        entry.actor,
        entry.action,
        entry.target,
        entry.outcome,
        entry.before,
        entry.after,
        entry.source_address,
    ]
    return keyed_digest(settings, "audit-chain", json.dumps(fields, separators=(",", ":")))


def record(
    session: Session,
    settings: Settings,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    source_address: str | None = None,
    outcome: str = SUCCESS,
) -> AuditEntry:
    """Append one entry (flushed, not committed: the caller's unit of work commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    previous = session.scalar(select(AuditEntry.digest).order_by(AuditEntry.id.desc()).limit(1))
    entry = AuditEntry(
        at=utcnow(),
        actor=actor[:320],
        action=action,
        target=target[:255] if target else None,
        outcome=outcome,
        before=_json(before),
        after=_json(after),
        source_address=source_address[:64] if source_address else None,
        previous_digest=previous or GENESIS,
    )
    entry.digest = _digest(settings, entry)
    session.add(entry)
    session.flush()
    return entry


def failure_details(error: BaseException) -> dict[str, Any]:
    """What a failure entry keeps of ``error``: its code and field, never its message.

    Messages may quote what was typed, and Stripe's may echo request values; the
    stable code says what went wrong, the Stripe request id where to look further.
    """
    if not isinstance(error, PaydeskError):
        return {"error": "internal_error"}
    details: dict[str, Any] = {"error": error.code}
    if error.field:
        details["field"] = error.field
    for key in _KEPT_DETAILS:
        value = error.details.get(key)
        if isinstance(value, str) and value:
            details[key] = value[:255]
    return details


@dataclass(frozen=True)
class ChainReport:
    """The outcome of ``verify``: how many entries, and the first broken one."""

    checked: int
    broken_at: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the whole chain verified."""
        return self.broken_at is None


def verify(session: Session, settings: Settings) -> ChainReport:
    """Recompute the chain from the first entry; report the first entry that breaks it."""
    expected_previous = GENESIS
    checked = 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id)).yield_per(500):
        if entry.previous_digest != expected_previous:
            return ChainReport(checked, entry.id, "an entry before it was removed or reordered")
        if _digest(settings, entry) != entry.digest:
            return ChainReport(checked, entry.id, "its content was changed")
        expected_previous = entry.digest
        checked += 1
    return ChainReport(checked)


@dataclass(frozen=True)
class AuditFilter:
    """Filters of the console's audit page and the CSV export."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query(
    session: Session, filters: AuditFilter, *, before_id: int | None = None, limit: int = 50
) -> list[AuditEntry]:
    """Entries matching ``filters``, newest first; ``before_id`` pages (keyset)."""
    statement = select(AuditEntry).order_by(AuditEntry.id.desc())
    if filters.actor:
        statement = statement.where(AuditEntry.actor == filters.actor)
    if filters.action:
        statement = statement.where(AuditEntry.action.startswith(filters.action))
    if filters.target:
        statement = statement.where(AuditEntry.target == filters.target)
    if filters.outcome:
        statement = statement.where(AuditEntry.outcome == filters.outcome)
    if filters.since:
        statement = statement.where(AuditEntry.at >= filters.since)
    if filters.until:
        statement = statement.where(AuditEntry.at < filters.until)
    if before_id is not None:
        statement = statement.where(AuditEntry.id < before_id)
    return list(session.scalars(statement.limit(limit)))


def iter_all(session: Session, filters: AuditFilter) -> Iterator[AuditEntry]:
    """Every matching entry, newest first, in pages."""
    before_id: int | None = None
    while True:
        rows = query(session, filters, before_id=before_id, limit=500)
        yield from rows
        if len(rows) < 500:
            return
        before_id = rows[-1].id


def _cell(value: str | None) -> str:
    # A failed sign-in records whatever was typed as the email: keep spreadsheet
    # programs from reading such a value as a formula.
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_line(values: Iterable[object]) -> str:
    """One CSV line (with its line ending); text cells that look like formulas are neutralised.

    Numbers stay numbers; any text — ids, emails, notes, whatever a customer or a
    failed sign-in typed — is neutralised like the audit export's cells.
    """
    buffer = io.StringIO()
    csv.writer(buffer).writerow(
        [_cell(v) if isinstance(v, str) else ("" if v is None else v) for v in values]
    )
    return buffer.getvalue()


def to_csv(entries: Iterable[AuditEntry]) -> str:
    """CSV with a header row (``CSV_COLUMNS``); formula-like cells are neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow(
            [
                entry.id,
                _utc(entry.at).isoformat(),
                _cell(entry.actor),
                entry.action,
                _cell(entry.target),
                entry.outcome,
                _cell(entry.before),
                _cell(entry.after),
                _cell(entry.source_address),
            ]
        )
    return buffer.getvalue()
