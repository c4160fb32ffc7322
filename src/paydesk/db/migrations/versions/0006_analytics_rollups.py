"""analytics rollups: daily figures, customers' MRR segments; indexes for metric windows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:00:00.000000

The business metrics read these tables instead of whole mirror tables
(docs/METRICS.md, "How they are computed"). Every transaction that writes the
mirror keeps them in step; an existing database needs them filled once: this
migration does it for small databases (up to 20,000 mirror rows) and
otherwise says to run ``paydesk analytics rebuild``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

LIST_INDEXES = (
    ("payments", ["status", "stripe_created"]),
    ("payments", ["customer_id", "stripe_created"]),
    ("subscriptions", ["tier", "stripe_created"]),
    ("subscriptions", ["status", "stripe_created"]),
)


def upgrade() -> None:
    op.create_table(
        "analytics_daily",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("payments_created", sa.BigInteger(), nullable=False),
        sa.Column("payments_succeeded", sa.BigInteger(), nullable=False),
        sa.Column("payments_failed", sa.BigInteger(), nullable=False),
        sa.Column("payments_volume", sa.BigInteger(), nullable=False),
        sa.Column("refunds_created", sa.BigInteger(), nullable=False),
        sa.Column("refunds_succeeded", sa.BigInteger(), nullable=False),
        sa.Column("refunds_amount", sa.BigInteger(), nullable=False),
        sa.Column("disputes_opened", sa.BigInteger(), nullable=False),
        sa.Column("disputes_resolved", sa.BigInteger(), nullable=False),
        sa.Column("disputes_resolution_seconds", sa.BigInteger(), nullable=False),
        sa.Column("subscriptions_new", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("currency", "day", name=op.f("pk_analytics_daily")),
    )
    op.create_table(
        "mrr_customers",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("paid_from", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("currency", "customer_id", name=op.f("pk_mrr_customers")),
    )
    op.create_table(
        "mrr_daily",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("amount_den", sa.BigInteger(), nullable=False),
        sa.Column("started", sa.BigInteger(), nullable=False),
        sa.Column("ended", sa.BigInteger(), nullable=False),
        sa.Column("started_num", sa.BigInteger(), nullable=False),
        sa.Column("ended_num", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("currency", "day", "amount_den", name=op.f("pk_mrr_daily")),
    )
    op.create_table(
        "mrr_segments",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("valid_from", sa.BigInteger(), nullable=False),
        sa.Column("valid_to", sa.BigInteger(), nullable=True),
        sa.Column("amount_num", sa.BigInteger(), nullable=False),
        sa.Column("amount_den", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "currency", "customer_id", "valid_from", name=op.f("pk_mrr_segments")
        ),
    )
    op.create_table(
        "subscription_daily",
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("subscriptions", sa.BigInteger(), nullable=False),
        sa.Column("canceled", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tier", "status", "day", name=op.f("pk_subscription_daily")),
    )
    op.create_table(
        "metrics_snapshots",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("computed_at", sa.Float(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_metrics_snapshots")),
    )
    op.create_index("ix_stripe_events_processed_at", "stripe_events", ["processed_at"])
    op.create_index(
        "ix_subscriptions_tier_status_stripe_created",
        "subscriptions",
        ["tier", "status", "stripe_created"],
    )
    op.create_index(
        "ix_mrr_segments_currency_valid_from", "mrr_segments", ["currency", "valid_from"]
    )
    op.create_index("ix_mrr_segments_currency_valid_to", "mrr_segments", ["currency", "valid_to"])
    for table in ("payments", "refunds", "disputes", "subscriptions"):
        columns = ["currency", "stripe_created"]
        op.create_index(f"ix_{table}_currency_stripe_created", table, columns)
    op.create_index("ix_disputes_currency_closed_at", "disputes", ["currency", "closed_at"])
    # The Admin API's and console's filters and searches (docs/OPERATIONS.md, sizes tested).
    for table, columns in LIST_INDEXES:
        op.create_index(f"ix_{table}_{'_'.join(columns)}", table, columns)
    op.create_index("ix_customers_email_lower", "customers", [sa.text("lower(email)")])
    _backfill()


def _backfill() -> None:
    from paydesk.analytics.rollups import backfill_small_database

    # "deferred" when a later migration adds a table the rebuild writes: it fills then.
    backfill_small_database(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_customers_email_lower", table_name="customers")
    for table, columns in LIST_INDEXES:
        op.drop_index(f"ix_{table}_{'_'.join(columns)}", table_name=table)
    op.drop_index("ix_disputes_currency_closed_at", table_name="disputes")
    for table in ("payments", "refunds", "disputes", "subscriptions"):
        op.drop_index(f"ix_{table}_currency_stripe_created", table_name=table)
    op.drop_index("ix_mrr_segments_currency_valid_to", table_name="mrr_segments")
    op.drop_index("ix_mrr_segments_currency_valid_from", table_name="mrr_segments")
    op.drop_index("ix_subscriptions_tier_status_stripe_created", table_name="subscriptions")
    op.drop_table("subscription_daily")
    op.drop_index("ix_stripe_events_processed_at", table_name="stripe_events")
    op.drop_table("metrics_snapshots")
    op.drop_table("mrr_segments")
    op.drop_table("mrr_daily")
    op.drop_table("mrr_customers")
    op.drop_table("analytics_daily")
