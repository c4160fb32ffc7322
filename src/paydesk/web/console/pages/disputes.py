"""Console disputes: list, CSV export, one dispute with its deadline and timeline,
evidence (text and files uploaded to Stripe) and accepting."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from paydesk import queries
from paydesk.admin_actions import disputes as dispute_actions
from paydesk.billing.disputes import CLOSED
from paydesk.db.models import Dispute, Payment
from paydesk.errors import InvalidInput, NotFound
from paydesk.queries import page
from paydesk.web.api.deps import SessionDep, get_gateway
from paydesk.web.console.common import (
    PREFIX,
    FormDep,
    PrincipalDep,
    action_context,
    confirm,
    csv_response,
    form_field,
    raw_field,
    render,
)

router = APIRouter()


@router.get("/disputes")
def disputes(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    status: str = "",
    cursor: str | None = None,
) -> Response:
    query = queries.disputes(queries.DisputeFilter(status=status))
    rows, next_cursor = page(session, Dispute, query, cursor, 25)
    return render(
        request,
        "disputes.html",
        {"rows": rows, "next_cursor": next_cursor, "status": status},
    )


COLUMNS = (
    "id",
    "created",
    "payment",
    "charge",
    "amount",
    "currency",
    "reason",
    "status",
    "evidence_due_by",
    "closed_at",
)


@router.get("/disputes.csv")
def disputes_csv(
    request: Request, session: SessionDep, principal: PrincipalDep, status: str = ""
) -> Response:
    query = queries.disputes(queries.DisputeFilter(status=status))

    def rows(session: Session) -> Iterator[tuple[object, ...]]:
        for d in queries.iter_all(session, Dispute, query):
            yield (
                d.stripe_id,
                d.stripe_created,
                d.payment_intent_id,
                d.charge_id,
                d.amount,
                d.currency,
                d.reason,
                d.status,
                d.evidence_due_by.isoformat() if d.evidence_due_by else None,
                d.closed_at.isoformat() if d.closed_at else None,
            )

    return csv_response(request, session, "disputes", COLUMNS, rows)


def due_in(due: datetime | None, now: datetime) -> str | None:
    """How long until evidence is due ("3 days 4 h"), "overdue", or None without a deadline."""
    if due is None:
        return None
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    left = due - now
    if left.total_seconds() <= 0:
        return "overdue"
    hours = int(left.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if days else f"{hours} h"


@router.get("/disputes/{dispute_id}")
def dispute_detail(
    dispute_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    row = queries.dispute_by_id(session, dispute_id)
    if row is None:
        raise NotFound(f"No such dispute: '{dispute_id[:255]}'.", code="dispute_not_found")
    payment = None
    if row.payment_intent_id:
        payment = session.scalars(
            select(Payment).where(Payment.stripe_id == row.payment_intent_id)
        ).first()
    related = [row.stripe_id, row.charge_id or "", row.payment_intent_id or ""]
    return render(
        request,
        "dispute.html",
        {
            "d": row,
            "payment": payment,
            "due_in": due_in(row.evidence_due_by, datetime.now(UTC))
            if row.closed_at is None
            else None,
            "events": queries.timeline(session, related),
            "open": row.status not in CLOSED,
            "fields": EVIDENCE_LABELS,
            "file_fields": FILE_LABELS,
            "form_key": secrets.token_hex(16),
        },
    )


EVIDENCE_LABELS = {
    "product_description": "What was sold",
    "service_date": "Date of service",
    "refund_policy_disclosure": "How the refund policy was shown",
    "cancellation_rebuttal": "Why the cancellation claim does not hold",
    "uncategorized_text": "Other evidence",
}
# File evidence (uploaded to Stripe's Files API; PDF, JPEG or PNG).
FILE_LABELS = {
    "receipt": "Receipt",
    "customer_communication": "Communication with the customer",
    "uncategorized_file": "Other file",
}
_FILE_ID = re.compile(r"file_[A-Za-z0-9]{1,200}")


def uploaded_files(form: FormData) -> dict[str, tuple[str, bytes]]:
    """The evidence files chosen in the form: field → (filename, bytes); empty inputs
    are left out. The body is already capped (``web/limits.py``), so reading is bounded."""
    files: dict[str, tuple[str, bytes]] = {}
    for name in FILE_LABELS:
        value = form.get(name)
        if isinstance(value, UploadFile) and value.filename:
            value.file.seek(0)
            content = value.file.read()
            if content:
                files[name] = (value.filename, content)
    return files


def carried_file_ids(form: FormData) -> dict[str, str]:
    """File ids carried by the confirmation step (files uploaded with the draft)."""
    ids: dict[str, str] = {}
    for name in FILE_LABELS:
        value = form.get(name)
        if isinstance(value, str) and value:
            if not _FILE_ID.fullmatch(value):
                raise InvalidInput(f"{name} takes the id of an uploaded file.", field=name)
            ids[name] = value
    return ids


@router.post("/disputes/{dispute_id}/{action}")
def dispute_action(
    dispute_id: str,
    action: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    form: FormDep,
) -> Response:
    """Save or submit evidence, or accept the dispute."""
    declared = {"evidence": dispute_actions.EVIDENCE, "close": dispute_actions.CLOSE}
    if action not in declared:
        raise StarletteHTTPException(404)
    ctx = action_context(request, session, principal)
    ctx.begin(declared[action], dispute_id)
    url = f"{PREFIX}/disputes/{dispute_id}"
    gateway = get_gateway(request)
    if action == "close":
        if form_field(form, "confirm") != "yes":
            return confirm(
                request,
                title="Confirm accepting the dispute",
                summary=[
                    f"Accept {dispute_id}: it closes as lost, the customer keeps the money.",
                    "This cannot be undone.",
                ],
                action=f"{url}/close",
                fields={},
                button="Accept dispute",
            )
        dispute_actions.close(ctx, gateway, dispute_id)
        return RedirectResponse(f"{url}?done=dispute_closed", status_code=303)
    evidence = {name: raw_field(form, name) for name in EVIDENCE_LABELS}
    evidence.update(carried_file_ids(form))
    files = uploaded_files(form)
    submit = form_field(form, "submit") == "submit"
    key = form_field(form, "form_key")[:64] or secrets.token_hex(16)
    if submit and form_field(form, "confirm") != "yes":
        summary = [
            f"Submit the evidence of {dispute_id} to the bank.",
            "Submitted evidence is final: it can no longer be edited.",
        ]
        if files:
            # A file cannot ride along a confirmation form: upload it now, with the
            # text, as a draft, and carry the new file ids to the confirmation.
            file_ids: dict[str, str] = {}
            dispute_actions.evidence(
                ctx,
                gateway,
                dispute_id,
                evidence,
                submit=False,
                request_key=f"console-draft-{key}",
                files=files,
                file_ids=file_ids,
            )
            evidence.update(file_ids)
            names = ", ".join(f"{FILE_LABELS[k]} ({files[k][0][:80]})" for k in files)
            summary.insert(1, f"Files uploaded and saved with a draft: {names}.")
        return confirm(
            request,
            title="Confirm submitting evidence",
            summary=summary,
            action=f"{url}/evidence",
            fields={**evidence, "submit": "submit", "form_key": key},
            button="Submit evidence",
        )
    dispute_actions.evidence(
        ctx,
        gateway,
        dispute_id,
        evidence,
        submit=submit,
        request_key=f"console-{key}",
        files=files,
    )
    done = "evidence_submitted" if submit else "evidence_saved"
    return RedirectResponse(f"{url}?done={done}", status_code=303)
