"""stripe_events.lease_token: which claim a pending event is leased to

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 09:30:00.000000

The worker writes a fresh token on every row it claims and writes the row's outcome
only where the token is still its own. A worker whose lease ran out and whose
events another worker claimed again can then no longer write over the new owner's
status and attempts. Nullable: rows never claimed, or finished, carry none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_column("lease_token")
