"""Disputes: evidence (saved as a draft or submitted to the bank) and acceptance."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paydesk.billing.mirror import apply_dispute
from paydesk.db.models import Dispute
from paydesk.errors import Conflict, InvalidInput
from paydesk.stripe_gateway import StripeGateway
from paydesk.stripe_gateway.gateway import operation_key
from paydesk.stripe_gateway.params import DisputeUpdateParams

# The text evidence fields an operator fills in (Stripe's names).
TEXT_EVIDENCE = (
    "product_description",
    "customer_name",
    "customer_email_address",
    "billing_address",
    "service_date",
    "refund_policy_disclosure",
    "cancellation_rebuttal",
    "uncategorized_text",
)
# The evidence fields that take an uploaded file's id (Stripe's Files API,
# purpose dispute_evidence), not text.
FILE_EVIDENCE = ("receipt", "customer_communication", "uncategorized_file")
MAX_EVIDENCE_TEXT = 20_000  # Stripe's limit on a text evidence field
# Stripe takes dispute evidence files as PDF, JPEG or PNG, together at most 4.5 MB;
# checked here too so an operator learns it beside the field, before any upload.
MAX_EVIDENCE_FILES_BYTES = 4_500_000
_FILE_ID = re.compile(r"file_[A-Za-z0-9]{1,200}")
_FILE_TYPES = ((b"%PDF-", "PDF"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))
CLOSED = frozenset({"won", "lost", "warning_closed", "prevented", "charge_refunded"})


def _open_row(session: Session, dispute_id: str) -> Dispute | None:
    row = session.scalars(select(Dispute).where(Dispute.stripe_id == dispute_id)).first()
    if row is not None and row.status in CLOSED:
        raise Conflict(
            f"The dispute is {row.status}; it can no longer be answered.", code="dispute_closed"
        )
    return row


def submit_evidence(
    session: Session,
    gateway: StripeGateway,
    dispute_id: str,
    evidence: Mapping[str, str],
    *,
    submit: bool,
    request_key: str,
) -> Dispute:
    """Save ``evidence`` on the dispute; ``submit`` sends it to the bank (no more edits).

    The text fields of ``TEXT_EVIDENCE``, each at most ``MAX_EVIDENCE_TEXT``
    characters, and the file fields of ``FILE_EVIDENCE``, each an uploaded file's id
    (``upload_evidence_files``); empty fields are left out.
    """
    fields: dict[str, Any] = {}
    for key, value in evidence.items():
        if key in FILE_EVIDENCE:
            if value and not _FILE_ID.fullmatch(value):
                raise InvalidInput(f"{key} takes the id of an uploaded file (file_…).", field=key)
            if value:
                fields[key] = value
            continue
        if key not in TEXT_EVIDENCE:
            raise InvalidInput(f"Unknown evidence field: {key[:64]}.", field="evidence")
        if len(value) > MAX_EVIDENCE_TEXT:
            raise InvalidInput(
                f"Evidence is limited to {MAX_EVIDENCE_TEXT} characters a field.", field=key
            )
        if "\x00" in value:
            raise InvalidInput("Evidence cannot contain NUL characters.", field=key)
        if value.strip():
            fields[key] = value
    if not fields:
        raise InvalidInput("Give at least one piece of evidence.", field="evidence")
    _open_row(session, dispute_id)
    params: DisputeUpdateParams = {"evidence": fields, "submit": submit}  # type: ignore[typeddict-item]
    key = operation_key("dispute-evidence", dispute_id, request_key)
    row, _ = apply_dispute(
        session, gateway.update_dispute(dispute_id, params, key=key), int(time.time())
    )
    return row


def evidence_file_problem(content: bytes) -> str | None:
    """Why ``content`` cannot be dispute evidence, or None (PDF, JPEG or PNG only)."""
    if not content:
        return "The file is empty."
    if not any(content.startswith(magic) for magic, _ in _FILE_TYPES):
        return "Evidence files must be PDF, JPEG or PNG."
    return None


def upload_evidence_files(
    session: Session,
    gateway: StripeGateway,
    dispute_id: str,
    files: Mapping[str, tuple[str, bytes]],
) -> dict[str, str]:
    """Upload evidence files (field → (filename, bytes)) to Stripe; field → file id.

    Every file is checked (type from its bytes, their total size) before the first
    upload, so a refused form uploads nothing.
    """
    for key, (_, content) in files.items():
        if key not in FILE_EVIDENCE:
            raise InvalidInput(f"Unknown evidence file field: {key[:64]}.", field="evidence")
        problem = evidence_file_problem(content)
        if problem is not None:
            raise InvalidInput(problem, field=key)
    if sum(len(content) for _, content in files.values()) > MAX_EVIDENCE_FILES_BYTES:
        raise InvalidInput(
            "Evidence files are limited to 4.5 MB together (Stripe's limit).",
            field=next(iter(files), "evidence"),
        )
    _open_row(session, dispute_id)
    ids: dict[str, str] = {}
    for key, (filename, content) in files.items():
        digest = hashlib.sha256(content).hexdigest()
        name = _SAFE_NAME.sub("_", filename)[-100:] or "evidence"
        uploaded = gateway.upload_evidence_file(
            content, name, key=operation_key("dispute-file", dispute_id, key, digest)
        )
        ids[key] = str(uploaded["id"])
    return ids


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def accept_dispute(session: Session, gateway: StripeGateway, dispute_id: str) -> Dispute:
    """Accept (close) a dispute: the customer keeps the money, the dispute is lost."""
    _open_row(session, dispute_id)
    obj = gateway.close_dispute(dispute_id, key=operation_key("dispute-close", dispute_id))
    row, _ = apply_dispute(session, obj, int(time.time()))
    return row
