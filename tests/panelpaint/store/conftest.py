"""Fixtures of the job store tests: a fresh store per test (SQLite and PostgreSQL) and a small world."""
from __future__ import annotations

import shutil
import types
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrations import runner as migrate
from panelpaint.store import accounts, batches, styles
from panelpaint.store.db import Store
from panelpaint.store.schema import Role
from panelpaint.store.storage import LocalStorage
from tests.testkit import KEY_A, KEY_B, ScratchDatabase, missing_service, postgres_admin_url


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # scrypt costs ~0.1 s a hash by design; the tests that check hashing itself restore it.
    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file built once by the Alembic migrations, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> str | None:
    """A PostgreSQL database built once by the Alembic migrations, cloned for each test
    (CREATE DATABASE ... TEMPLATE takes ~0.1 s where building the schema takes ~1 s)."""
    admin = postgres_admin_url()
    try:
        template = ScratchDatabase(admin, "pp_store_tmpl") if admin else None
    except sa.exc.OperationalError:
        template = None
    if template is None:
        yield None
        return
    migrate.upgrade(template.url)
    yield template.name
    template.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def schema_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Like `database_url` (each test runs on SQLite and on PostgreSQL, a fresh database each time),
    but the database already holds the migrated schema."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    if template is None:
        missing_service("PostgreSQL (DATABASE_URL=postgresql+psycopg://...)")
    database = ScratchDatabase(postgres_admin_url(), template=template)
    yield database.url
    database.drop()


@pytest.fixture
def store(schema_url: str) -> Store:
    """A store on a fresh, migrated database (SQLite and PostgreSQL)."""
    st = Store(schema_url)
    yield st
    st.dispose()


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


def make_studio(session, name: str) -> types.SimpleNamespace:
    """A studio with an admin, an artist and a reviewer, a style and a batch of two pages."""
    studio = accounts.create_studio(session, name)
    slug = name.lower().replace(" ", "")
    admin = accounts.create_user(session, studio.id, f"admin@{slug}.test", "password-1", Role.admin)
    artist = accounts.create_user(session, studio.id, f"artist@{slug}.test", "password-1", Role.artist)
    reviewer = accounts.create_user(session, studio.id, f"reviewer@{slug}.test", "password-1", Role.reviewer)
    style = styles.add_style_reference(session, studio.id, "hero", ["Hero", "red"], KEY_B, 64, 64, admin.id)
    batch = batches.create_batch(session, studio.id, artist.id, "chapter 1", style.id, "rtl", {"work_size": 256})
    pages = [batches.add_page(session, batch.id, f"p{i}.png", KEY_A, 100, 80) for i in range(2)]
    return types.SimpleNamespace(studio=studio.id, admin=admin.id, artist=artist.id, reviewer=reviewer.id,
                                 style=style.id, batch=batch.id, pages=[p.id for p in pages])


@pytest.fixture
def world(store: Store) -> types.SimpleNamespace:
    """Two studios, A and B, each made by `make_studio`."""
    with store.session() as s:
        return types.SimpleNamespace(a=make_studio(s, "Studio A"), b=make_studio(s, "Studio B"))
