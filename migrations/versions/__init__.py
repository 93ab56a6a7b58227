"""Alembic revision scripts of the job store, one per schema change."""
