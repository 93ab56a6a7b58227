"""`panelpaint db` and `panelpaint user` through click's CliRunner on a temporary database."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main
from migrations import runner as migrate
from panelpaint.store import accounts
from panelpaint.store.db import Store


@pytest.fixture
def cli(database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(main, list(args), catch_exceptions=False, **kw)


def test_db_upgrade_current_downgrade(cli, database_url):
    result = cli("db", "current")
    assert result.exit_code == 0 and "base" in result.output and "run panelpaint db upgrade" in result.output
    result = cli("db", "upgrade")
    assert result.exit_code == 0 and migrate.head() in result.output
    assert "up to date" in cli("db", "current").output
    assert cli("db", "downgrade", "base").exit_code == 0
    assert migrate.current(database_url) is None


def test_user_create_and_token(cli, database_url):
    assert "not up to date" in cli("user", "create", "--email", "a@b.co", "--studio", "S",
                                   "--password", "password-1").output
    cli("db", "upgrade")
    result = cli("user", "create", "--email", "Boss@B.co", "--studio", "Ink", "--role", "admin",
                 "--password", "password-1")
    assert result.exit_code == 0, result.output
    assert "created admin boss@b.co" in result.output
    # prompted password, with confirmation
    result = cli("user", "create", "--email", "r@b.co", "--studio", "Ink", "--role", "reviewer",
                 input="password-2\npassword-2\n")
    assert result.exit_code == 0, result.output
    result = cli("user", "create", "--email", "r@b.co", "--studio", "Ink", "--password", "password-2")
    assert result.exit_code == 1 and "already exists" in result.output
    result = cli("user", "create", "--email", "x@b.co", "--studio", "Ink", "--password", "short")
    assert result.exit_code == 1 and "at least 8" in result.output
    result = cli("user", "token", "--email", "boss@b.co", "--name", "pipeline")
    assert result.exit_code == 0
    token = result.output.strip()
    store = Store(database_url)
    try:
        with store.session() as s:
            user = accounts.user_for_token(s, token)
            assert user.email == "boss@b.co" and user.studio.name == "Ink"
            assert accounts.authenticate(s, "r@b.co", "password-2").role.value == "reviewer"
    finally:
        store.dispose()
    result = cli("user", "token", "--email", "nobody@b.co", "--name", "x")
    assert result.exit_code == 1 and "no user" in result.output


def test_bad_database_url_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    result = CliRunner().invoke(main, ["db", "current"])
    assert result.exit_code == 1 and "DATABASE_URL must be" in result.output


def test_user_password(cli, database_url):
    cli("db", "upgrade")
    cli("user", "create", "--email", "a@b.co", "--studio", "Ink", "--password", "password-1")
    result = cli("user", "password", "--email", "A@b.co", input="password-9\npassword-9\n")
    assert result.exit_code == 0 and "password of a@b.co changed" in result.output, result.output
    assert cli("user", "password", "--email", "a@b.co", "--password", "short").exit_code == 1
    assert "no user" in cli("user", "password", "--email", "nobody@b.co", "--password", "password-3").output
    store = Store(database_url)
    try:
        with store.session() as s:
            assert accounts.authenticate(s, "a@b.co", "password-9") is not None
            assert accounts.authenticate(s, "a@b.co", "password-1") is None
    finally:
        store.dispose()
