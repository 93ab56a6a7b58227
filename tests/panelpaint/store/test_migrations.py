"""Alembic migrations build the schema on SQLite and PostgreSQL, match the models, and round-trip."""
from __future__ import annotations

import sqlalchemy as sa

from migrations import runner as migrate
from panelpaint.store.db import Store
from panelpaint.store.schema import Base
from tests.testkit import race


def tables(url):
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def columns(url, table):
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_upgrade_matches_models_and_round_trips(database_url):
    assert migrate.current(database_url) is None
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == migrate.head() and migrate.is_up_to_date(database_url)
    assert tables(database_url) == set(Base.metadata.tables)
    assert migrate.drift(database_url) == []  # autogenerate would find nothing to add
    migrate.downgrade(database_url, "base")
    assert migrate.current(database_url) is None and tables(database_url) == set()
    migrate.upgrade(database_url)
    assert migrate.drift(database_url) == []
    migrate.upgrade(database_url)  # already at head: nothing happens


def test_drift_is_detected(database_url):
    """The drift check can fail: a column the models lack is reported."""
    migrate.upgrade(database_url)
    store = Store(database_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE studio ADD COLUMN extra INTEGER")
    store.dispose()
    assert any(d[0] == "remove_column" for d in migrate.drift(database_url))


def test_script_location_is_the_packaged_folder():
    loc = migrate.script_location()
    assert (loc / "env.py").is_file() and (loc / "versions").is_dir()


def test_step_by_step_revisions(database_url):
    """Each revision upgrades and downgrades on its own (0001 <-> 0002 <-> ... <-> 0011)."""
    migrate.upgrade(database_url, "0001")
    assert migrate.current(database_url) == "0001"
    migrate.upgrade(database_url, "0002")
    migrate.downgrade(database_url, "0001")
    assert migrate.current(database_url) == "0001"
    migrate.upgrade(database_url, "0003")
    assert "prepared" in columns(database_url, "page")
    migrate.downgrade(database_url, "0002")
    assert "prepared" not in columns(database_url, "page")
    migrate.upgrade(database_url, "0004")
    assert "next_entry" in columns(database_url, "upload")
    migrate.downgrade(database_url, "0003")
    assert "upload" not in tables(database_url)
    migrate.upgrade(database_url, "0006")
    assert "variant_set" in tables(database_url) and "variant_set_id" in columns(database_url, "render")
    migrate.downgrade(database_url, "0005")
    assert "variant_set" not in tables(database_url) and "variant_set_id" not in columns(database_url, "render")
    assert "palette" in columns(database_url, "style_reference")
    migrate.upgrade(database_url, "0007")
    assert {"stage", "handoff_key", "sent_at"} <= columns(database_url, "render")
    migrate.downgrade(database_url, "0006")
    assert not {"stage", "handoff_key", "sent_at"} & columns(database_url, "render")
    migrate.upgrade(database_url, "0010")
    assert {"undone_at", "undone_by_id"} <= columns(database_url, "review")
    migrate.downgrade(database_url, "0007")
    assert not {"undone_at", "undone_by_id"} & columns(database_url, "review")
    migrate.upgrade(database_url, "0009")
    assert {"confidence", "retired_at"} <= columns(database_url, "panel")
    assert {"layout_confidence", "panel_check"} <= columns(database_url, "page")
    migrate.downgrade(database_url, "0007")
    assert not {"confidence", "retired_at"} & columns(database_url, "panel")
    assert not {"layout_confidence", "panel_check"} & columns(database_url, "page")
    migrate.upgrade(database_url, "0008")
    assert "session_version" in columns(database_url, "user_account") and "thumbnails" in columns(database_url, "page")
    migrate.downgrade(database_url, "0007")
    assert "session_version" not in columns(database_url, "user_account")
    migrate.upgrade(database_url, "0011")
    assert {"webhook", "webhook_delivery"} <= tables(database_url) and "notified_at" in columns(database_url, "batch")
    migrate.downgrade(database_url, "0010")
    assert not {"webhook", "webhook_delivery"} & tables(database_url)
    migrate.upgrade(database_url)
    assert migrate.is_up_to_date(database_url)


def test_concurrent_upgrades_take_turns(database_url):
    """Containers starting together all run `db upgrade`; every one must succeed."""
    _, errors = race(3, lambda i: migrate.upgrade(database_url), timeout=120)
    assert errors == [] and migrate.is_up_to_date(database_url)
