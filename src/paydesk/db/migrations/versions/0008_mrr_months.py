"""mrr_months: each calendar month's MRR movements per currency, kept as rows; refunds by status

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00.000000

The MRR series and the dashboard read a month's movements (new, expansion,
contraction, churn, reactivation) from these rows instead of classifying every
customer whose MRR changed in it (``paydesk.analytics.months``). The migration
fills them from the existing ``mrr_segments`` in SQL, one month at a time (about
a second per month at a million subscriptions); ``paydesk analytics rebuild``
recomputes them with the other rollups. Refunds get the index their status
filter needs (the console's query-plan test found it walking the table);
``mrr_customers`` one on ``paid_from`` (a window's first payers: new vs reactivated).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "mrr_months",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("month", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("amount_den", sa.BigInteger(), nullable=False),
        sa.Column("amount_num", sa.BigInteger(), nullable=False),
        sa.Column("customers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "currency", "month", "category", "amount_den", name=op.f("pk_mrr_months")
        ),
    )
    op.create_index("ix_refunds_status_stripe_created", "refunds", ["status", "stripe_created"])
    op.create_index(
        "ix_mrr_customers_currency_paid_from", "mrr_customers", ["currency", "paid_from"]
    )
    from sqlalchemy.orm import Session

    from paydesk.analytics.months import fill
    from paydesk.analytics.rollups import backfill_small_database

    connection = op.get_bind()
    if not connection.scalar(sa.text("SELECT count(*) FROM mrr_segments")):
        # 0006 left the fill to this migration (its rebuild writes mrr_months too).
        backfill_small_database(connection)
        return
    with Session(bind=op.get_bind(), join_transaction_mode="create_savepoint") as session:
        fill(session)
        session.commit()  # releases the savepoint into the migration's transaction


def downgrade() -> None:
    op.drop_index("ix_mrr_customers_currency_paid_from", table_name="mrr_customers")
    op.drop_index("ix_refunds_status_stripe_created", table_name="refunds")
    op.drop_table("mrr_months")
