"""stripe_event_attempts: the failed processing attempts of each webhook event

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:00:00.000000

An event row kept only its latest error, so the errors of earlier attempts were
lost. The worker now adds a row per failed attempt (the newest 20 per event kept).
Events processed before this revision have no history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "stripe_event_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "stripe_event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("error_type", sa.String(length=128), nullable=False),
        sa.Column("error_message", sa.String(length=1000), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["stripe_event_id"],
            ["stripe_events.id"],
            name=op.f("fk_stripe_event_attempts_stripe_event_id_stripe_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_event_attempts")),
    )
    with op.batch_alter_table("stripe_event_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stripe_event_attempts_event_id", ["stripe_event_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stripe_event_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_event_attempts_event_id")
    op.drop_table("stripe_event_attempts")
