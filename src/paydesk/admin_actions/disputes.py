"""Admin actions on disputes: answer with evidence (draft or submit), accept."""

from __future__ import annotations

from collections.abc import Mapping

from paydesk.admin_actions.core import Action, Context, Done, perform
from paydesk.auth.roles import Permission
from paydesk.billing.disputes import accept_dispute, submit_evidence
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
) -> Dispute:
    """Save evidence on a dispute, or submit it to the bank (the audit keeps field names)."""

    def work() -> Done[Dispute]:
        row = submit_evidence(
            ctx.session, gateway, dispute_id, fields, submit=submit, request_key=request_key
        )
        after = {"fields": sorted(k for k, v in fields.items() if v.strip()), "submit": submit}
        return Done(row, after={**after, "status": row.status})

    return perform(ctx, EVIDENCE, dispute_id, work)


def close(ctx: Context, gateway: StripeGateway, dispute_id: str) -> Dispute:
    """Accept a dispute (closed as lost)."""

    def work() -> Done[Dispute]:
        row = accept_dispute(ctx.session, gateway, dispute_id)
        return Done(row, after={"status": row.status})

    return perform(ctx, CLOSE, dispute_id, work)
