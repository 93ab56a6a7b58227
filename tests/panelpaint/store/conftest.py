"""Fixtures of the job store tests: a fresh store per test (SQLite and PostgreSQL) and a small world."""
from __future__ import annotations

import types

import pytest

from panelpaint.store import accounts, batches, styles
from panelpaint.store.db import Store
from panelpaint.store.schema import Base, Role
from panelpaint.store.storage import LocalStorage

KEY_A = "a" * 64 + ".png"
KEY_B = "b" * 64 + ".png"


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # scrypt costs ~0.1 s a hash by design; the tests that check hashing itself restore it.
    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


@pytest.fixture
def store(database_url: str) -> Store:
    """A store on a fresh database (runs on SQLite and PostgreSQL) with the schema of the models."""
    st = Store(database_url)
    Base.metadata.create_all(st.engine)
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
