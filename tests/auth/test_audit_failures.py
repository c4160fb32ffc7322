"""What an audit entry of a failed mutation keeps, and the outcome filter."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session, sessionmaker

from paydesk.auth import audit
from paydesk.errors import Conflict, PaymentFailed
from paydesk.settings import Settings


def test_failure_details_keep_codes_and_ids_never_messages() -> None:
    declined = PaymentFailed(
        "Your card 4242 4242 4242 4242 was declined.",
        code="card_declined",
        details={
            "stripe_request_id": "req_123",
            "decline_code": "insufficient_funds",
            "client_secret": "pi_1_secret_abc",
            "payment_intent": "pi_1",
        },
    )
    assert audit.failure_details(declined) == {
        "error": "card_declined",
        "stripe_request_id": "req_123",
        "decline_code": "insufficient_funds",
        "payment_intent": "pi_1",
    }
    conflict = Conflict("Already canceled.", code="subscription_ended", field="subscription")
    assert audit.failure_details(conflict) == {
        "error": "subscription_ended",
        "field": "subscription",
    }
    assert audit.failure_details(RuntimeError("boom: sk_test_x")) == {"error": "internal_error"}


def test_failure_entries_chain_and_filter(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    with sessions() as session:
        audit.record(session, settings, actor="a@x.test", action="refund.create", target="pi_1")
        audit.record(
            session,
            settings,
            actor="a@x.test",
            action="refund.create",
            target="pi_1",
            outcome=audit.FAILURE,
            after={"error": "amount_too_large"},
        )
        session.commit()
        failed = audit.query(session, audit.AuditFilter(outcome="failure"))
        assert [json.loads(e.after or "")["error"] for e in failed] == ["amount_too_large"]
        assert len(audit.query(session, audit.AuditFilter(outcome="success"))) == 1
        assert audit.verify(session, settings).ok
