"""Database access: engine and session factories, models, Alembic migrations."""
