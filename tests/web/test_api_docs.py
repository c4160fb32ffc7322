"""docs/API/ADMIN_API.md is generated from the OpenAPI document and kept in sync."""

from __future__ import annotations

from pathlib import Path

from paydesk.web.api_docs import admin_api_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "API" / "ADMIN_API.md"


def test_admin_api_doc_matches_the_code() -> None:
    expected = admin_api_markdown()
    assert DOC.read_text() == expected, (
        "docs/API/ADMIN_API.md is stale: run `.venv/bin/paydesk docs api > docs/API/ADMIN_API.md`"
    )


def test_doc_covers_every_admin_and_billing_operation() -> None:
    text = admin_api_markdown()
    for operation in (
        "## POST `/api/admin/payments/{payment_id}/refunds`",
        "## POST `/api/admin/subscriptions/{subscription_id}/tier`",
        "## GET `/api/admin/payments`",
        "## POST `/api/billing/subscription`",
    ):
        assert operation in text
    assert "| `amount` | integer | yes |" in text
