"""Alembic migrations of the job store; run them with `panelpaint db upgrade` or `migrations.runner`."""
