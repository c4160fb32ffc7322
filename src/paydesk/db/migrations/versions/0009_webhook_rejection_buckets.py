"""webhook rejections aggregated per (reason, source address, hour)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:00:00.000000

A flood of bad-signature deliveries wrote one row each, without bound. From now on a
refusal adds to the counter of its (reason, address, hour) row. Existing rows keep
their meaning: no hour, a count of 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_rejections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hour", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("count", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_webhook_rejections_hour_reason", ["hour", "reason"])


def downgrade() -> None:
    with op.batch_alter_table("webhook_rejections", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_rejections_hour_reason")
        batch_op.drop_column("last_received_at")
        batch_op.drop_column("count")
        batch_op.drop_column("hour")
