"""customer portal: portal_sessions (links and sessions, digests only) and email_outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00.000000

Portal links and the customer sessions they open keep only keyed digests of their
tokens. The outbox records each pay-link email in the webhook worker's transaction;
the worker sends it afterwards and retries failures.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("link_digest", sa.String(length=64), nullable=False, unique=True),
        sa.Column("session_digest", sa.String(length=64), nullable=True, unique=True),
        sa.Column("customer_id", sa.String(length=255), nullable=False, index=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("return_url", sa.String(length=2000), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "email_outbox",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False, unique=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("email_outbox")
    op.drop_table("portal_sessions")
