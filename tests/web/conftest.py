"""Fixtures for the dashboard tests, flaskr style: a fresh app per test on its own SQLite database
(copied from one migrated and seeded template, so each test starts in milliseconds), temporary
storage, the queue client stubbed to record what is enqueued, and logged-in clients per role in
two studios. CSRF protection stays ON: `Client.post_form` reads the token from a page like a browser.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from web_helpers import Client, FakeWorker, QueueRecorder, build_app, email, make_database, web_settings
from tests.panelpaint.comic_pages import small_page


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web-template") / "template.db"
    make_database(f"sqlite:///{path}")
    return path


@pytest.fixture
def queue_calls(monkeypatch: pytest.MonkeyPatch) -> QueueRecorder:
    from panelpaint import queue

    recorder = QueueRecorder()
    monkeypatch.setattr(queue, "enqueue_render", recorder.enqueue_render)
    monkeypatch.setattr(queue, "enqueue_ingest", recorder.enqueue_ingest)
    monkeypatch.setattr(queue, "enqueue_unpack", recorder.enqueue_unpack)
    monkeypatch.setattr(queue, "revoke", recorder.revoke)
    return recorder


@pytest.fixture
def app_settings(tmp_path: Path, template_db: Path):
    db = tmp_path / "web.db"
    shutil.copy(template_db, db)
    return web_settings(tmp_path, f"sqlite:///{db}")


@pytest.fixture
def app(app_settings, queue_calls):  # noqa: ANN001
    app = build_app(app_settings)
    yield app
    app.extensions["panelpaint"].store.dispose()


@pytest.fixture
def client(app) -> Client:  # noqa: ANN001
    return Client(app.test_client())


def _logged_in(app, studio: str, role: str) -> Client:  # noqa: ANN001
    c = Client(app.test_client())
    response = c.login(studio, role)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return c


@pytest.fixture
def artist(app) -> Client:  # noqa: ANN001
    return _logged_in(app, "alpha", "artist")


@pytest.fixture
def reviewer(app) -> Client:  # noqa: ANN001
    return _logged_in(app, "alpha", "reviewer")


@pytest.fixture
def admin(app) -> Client:  # noqa: ANN001
    return _logged_in(app, "alpha", "admin")


@pytest.fixture
def other_artist(app) -> Client:  # noqa: ANN001
    """An artist of the second studio, who must never see the first studio's work."""
    return _logged_in(app, "beta", "artist")


@pytest.fixture
def login_as(app):  # noqa: ANN001
    return lambda studio, role: _logged_in(app, studio, role)


@pytest.fixture
def api_token(app):  # noqa: ANN001
    """Make an API token for a seeded user: api_token('alpha', 'artist') -> plaintext."""
    from panelpaint.store import accounts

    def make(studio: str = "alpha", role: str = "artist") -> str:
        with app.extensions["panelpaint"].store.session() as s:
            user = accounts.get_user_by_email(s, email(studio, role))
            return accounts.create_api_token(s, user.id, "test")[1]

    return make


@pytest.fixture
def style_id(app):  # noqa: ANN001
    """A style in studio alpha's library (stored like an upload would be)."""
    from panelpaint.store import accounts, styles
    from panelpaint.store.storage import storage_from_settings

    services = app.extensions["panelpaint"]
    key = storage_from_settings(services.settings).put_bytes(small_page((48, 48), (200, 80, 40), lines=False), ".png")
    with services.store.session() as s:
        studio = accounts.get_studio_by_name(s, "Alpha")
        return styles.add_style_reference(s, studio.id, "Warm", ["hero"], key, 48, 48).id


@pytest.fixture
def worker(app):  # noqa: ANN001
    """Plays the worker's part through the job store: panels, claim, complete or fail a render."""
    return FakeWorker(app)


