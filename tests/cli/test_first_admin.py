"""`panelpaint up`'s first admin: made once, its password alone in var/admin_password (as README says)."""
from __future__ import annotations

import stat

from cli.service import ensure_admin
from migrations import runner as migrate
from panelpaint.settings import load_settings
from panelpaint.store import accounts
from panelpaint.store.db import Store


def test_the_first_admin_and_the_password_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate.upgrade(url)
    settings = load_settings(var_dir=tmp_path / "var", database_url=url)
    email, password = ensure_admin(settings)
    path = tmp_path / "var" / "admin_password"
    assert path.read_text() == f"{password}\n" and email not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = Store(url)
    try:
        with store.session() as s:
            assert accounts.authenticate(s, email, path.read_text().strip()) is not None  # the file logs in
    finally:
        store.dispose()
    assert ensure_admin(settings) is None  # once only
