"""stripe_events.payload compressed with lz4 on PostgreSQL

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 04:05:00.000000

A Stripe event (~3.7 kB) is above PostgreSQL's TOAST threshold, so every insert
compresses its payload; with the default pglz that was about a third of the
server's CPU per stored event. lz4 compresses as well on these JSON payloads at a
fraction of the cost. Existing rows keep their compression; new ones use lz4.
Nothing to do on SQLite (no TOAST), nor on a PostgreSQL built without lz4.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_HAS_LZ4 = sa.text(
    "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def _postgres_with_lz4() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "postgresql" and bind.execute(_HAS_LZ4).first() is not None


def upgrade() -> None:
    if _postgres_with_lz4():
        op.execute("ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    if _postgres_with_lz4():
        op.execute("ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION default")
