"""Run the job store's Alembic migrations from the installed package, without an alembic.ini.

`upgrade(url)` builds the schema (or brings it up to date), `downgrade(url, revision)` undoes
revisions, `current(url)` names the applied revision, `drift(url)` compares the upgraded database
with the models (an empty list means no drift). The script folder is this package's own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from panelpaint.store.db import make_engine


_LOCK_ID = 0x70616E656C  # "panel": an arbitrary constant naming the migration lock


def script_location() -> Path:
    return Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """An Alembic config for `url` pointing at the packaged migrations (env.py reads the URL from it)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    # ConfigParser interpolation would choke on '%' in passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _migration_engine(url: str) -> sa.Engine:
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        # Batch mode rebuilds a table by copy, drop and rename; with foreign keys enforced the drop
        # would cascade into other tables. Turn them off while migrating and check them afterwards.
        @sa.event.listens_for(engine, "connect")
        def _fk_off(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.execute("PRAGMA foreign_keys=OFF")

    return engine


def _run(url: str, fn, *args: Any) -> None:  # noqa: ANN001
    cfg = alembic_config(url)
    engine = _migration_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several containers may start at once and all run `db upgrade`: take turns. (On
                # SQLite the BEGIN IMMEDIATE of every transaction already serialises them.)
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
            cfg.attributes["connection"] = conn
            fn(cfg, *args)
            if conn.dialect.name == "sqlite":
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (default: the newest)."""
    _run(url, command.upgrade, revision)


def downgrade(url: str, revision: str) -> None:
    """Undo migrations down to `revision` ("base" removes every table)."""
    _run(url, command.downgrade, revision)


def head() -> str:
    """The newest revision of the packaged migrations."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current(url: str) -> str | None:
    """The revision the database is at, or None when no migration was applied."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def drift(url: str) -> list[Any]:
    """Differences between the database at `url` and the models ([] when the migrations match them)."""
    from alembic.autogenerate import compare_metadata

    from panelpaint.store.schema import Base

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def is_up_to_date(url: str) -> bool:
    return current(url) == head()


__all__ = ["alembic_config", "current", "downgrade", "drift", "head", "is_up_to_date", "script_location",
           "upgrade"]
