"""customers: an index on lower(email) for case-insensitive search

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-02 05:45:00.000000

Admins search payments, subscriptions and customers by email as they remember it;
Stripe keeps an email in the case it was given. The one query service compares
lower-cased values, which this index serves on both databases.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_customers_email_lower", "customers", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_customers_email_lower", table_name="customers")
