"""Admin actions on disputes: answer with evidence (draft or submit), accept."""

from __future__ import annotations

from collections.abc import Mapping

from paydesk.admin_actions.core import Action, Context, Done, perform
from paydesk.auth.roles import Permission
from paydesk.billing.disputes import accept_dispute, submit_evidence, upload_evidence_files
from paydesk.db.models import Dispute
from paydesk.stripe_gateway import StripeGateway

EVIDENCE = Action("dispute.evidence", Permission.DISPUTES_MANAGE)
CLOSE = Action("dispute.close", Permission.DISPUTES_MANAGE)


def evidence(
    ctx: Context,
    gateway: StripeGateway,
    dispute_id: str,
    fields: Mapping[str, str],
    *,
    submit: bool,
    request_key: str,
    files: Mapping[str, tuple[str, bytes]] | None = None,
    file_ids: dict[str, str] | None = None,
) -> Dispute:
    """Save evidence on a dispute, or submit it to the bank (the audit keeps field names).

    ``files`` (field → (filename, bytes)) are uploaded to Stripe first and their ids
    join ``fields`` (and ``file_ids``, when given, so a confirmation step can carry
    them); a refused upload is audited as a failed evidence action.
    """

    def work() -> Done[Dispute]:
        evidence = dict(fields)
        if files:
            uploaded = upload_evidence_files(ctx.session, gateway, dispute_id, files)
            evidence.update(uploaded)
            if file_ids is not None:
                file_ids.update(uploaded)
        row = submit_evidence(
            ctx.session, gateway, dispute_id, evidence, submit=submit, request_key=request_key
        )
        given = sorted(k for k, v in evidence.items() if v.strip())
        after = {"fields": given, "submit": submit}
        return Done(row, after={**after, "status": row.status})

    return perform(ctx, EVIDENCE, dispute_id, work)


def close(ctx: Context, gateway: StripeGateway, dispute_id: str) -> Dispute:
    """Accept a dispute (closed as lost)."""

    def work() -> Done[Dispute]:
        row = accept_dispute(ctx.session, gateway, dispute_id)
        return Done(row, after={"status": row.status})

    return perform(ctx, CLOSE, dispute_id, work)
