"""Helpers for the dashboard tests: seeded accounts, a CSRF-aware client, uploads, a fake worker
(pages: `tests.panelpaint.comic_pages.small_page`, archives: `tests.testkit.zip_bytes`)."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from panelpaint.settings import load_settings
from tests.panelpaint.comic_pages import small_page

PASSWORD = "correct-horse-battery"
STUDIOS = {"alpha": ("admin", "artist", "reviewer"), "beta": ("admin", "artist", "reviewer")}
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def email(studio: str, role: str) -> str:
    return f"{role}@{studio}.test"


def seed(session) -> None:  # noqa: ANN001
    """Two studios, one user per role in each."""
    from panelpaint.store import accounts

    for name, roles in STUDIOS.items():
        studio = accounts.create_studio(session, name.title())
        for role in roles:
            accounts.create_user(session, studio.id, email(name, role), PASSWORD, role)


def make_database(url: str) -> None:
    """Build the schema with the job store's migrations and seed it."""
    from migrations import runner as migrate
    from panelpaint.store.db import Store

    migrate.upgrade(url)
    store = Store(url)
    try:
        with store.session() as session:
            seed(session)
    finally:
        store.dispose()

@dataclass
class QueueRecorder:
    """Stands in for panelpaint.queue: records enqueued render ids and revoked task ids."""

    renders: list[int] = field(default_factory=list)
    task_ids: dict[int, str | None] = field(default_factory=dict)  # render id -> the task id it was sent under
    ingested: list[int] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    unpacks: list[int] = field(default_factory=list)
    ranks: dict[int, int] = field(default_factory=dict)  # render id -> the batch rank it was sent at
    unpack_ranks: dict[int, int] = field(default_factory=dict)  # upload id -> the rank it was sent at

    def enqueue_ingest(self, settings, page_id, rank=0):  # noqa: ANN001
        self.ingested.append(int(page_id))
        return f"ingest-{page_id}"

    def enqueue_render(self, settings, render_id, task_id=None, *, countdown=None, rank=0):  # noqa: ANN001
        self.renders.append(int(render_id))
        self.task_ids[int(render_id)] = task_id
        self.ranks[int(render_id)] = rank
        return task_id or f"task-{render_id}"

    def enqueue_unpack(self, settings, upload_id, task_id=None, *, countdown=None, rank=0):  # noqa: ANN001
        self.unpacks.append(int(upload_id))
        self.unpack_ranks[int(upload_id)] = rank
        return task_id or f"unpack-{upload_id}"

    def revoke(self, settings, task_ids, terminate=False):  # noqa: ANN001
        self.revoked.extend(task_ids)

    def run_unpacks(self, app) -> list[str]:  # noqa: ANN001
        """Do the io worker's part for every upload sent so far (pages added, ingest and renders sent here)."""
        from panelpaint.unpack import enqueue_pages, unpack_upload

        services = app.extensions["panelpaint"]
        done, self.unpacks = list(self.unpacks), []
        return [unpack_upload(services.store, services.storage, services.settings, uid,
                              enqueue_pages(services.settings, services.store)) for uid in done]


def web_settings(tmp_path: Path, database_url: str, **overrides):
    values = dict(var_dir=tmp_path / "var", database_url=database_url, secret_key="test-secret",
                  redis_url="redis://127.0.0.1:1/0", login_rate_limit="5 per minute",
                  max_content_length=2 * 1024 * 1024, max_image_pixels=4_000_000, max_archive_entries=20,
                  max_archive_bytes=1_000_000)
    values.update(overrides)
    return load_settings(**values)


def build_app(settings, **config):  # noqa: ANN001
    from web import create_app

    return create_app(settings, {"TESTING": True, "RATELIMIT_STORAGE_URI": "memory://", **config})

class Client:
    """A test client that behaves like a browser with respect to CSRF tokens."""

    def __init__(self, flask_client):  # noqa: ANN001
        self.c = flask_client
        self._token: str | None = None

    def __getattr__(self, name):  # noqa: ANN001
        return getattr(self.c, name)

    def csrf(self) -> str:
        if self._token is None:
            page = self.c.get("/login")
            if page.status_code == 302:  # logged in: any page carries the token
                page = self.c.get("/account")
            html = page.get_data(as_text=True)
            match = CSRF_META.search(html)
            assert match, "no CSRF token on the page"
            self._token = match.group(1)
        return self._token

    def post_form(self, url: str, data: dict | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf())
        return self.c.post(url, data=data, **kwargs)

    def login(self, studio: str, role: str, password: str = PASSWORD):
        response = self.post_form("/login", {"email": email(studio, role), "password": password})
        self._token = None  # the session changed; read a fresh token next time
        return response

# --- data helpers ------------------------------------------------------------------------------

def upload(data: bytes, name: str):
    return (io.BytesIO(data), name)

class FakeWorker:
    def __init__(self, app):  # noqa: ANN001
        self.services = app.extensions["panelpaint"]

    def finish(self, render_id: int, *, panels: int = 2, outputs: dict | None = None,
               color: tuple[int, int, int] = (120, 180, 240)) -> None:
        """Detect `panels` stacked panels (first time), claim the render and complete it with a composite,
        making the thumbnails of the page and its composite as the io workers do."""
        from PIL import Image

        from panelpaint.store import batches, renders, work
        from panelpaint.store.schema import Render
        from panelpaint.thumbnails import store_thumbnails

        storage = self.services.storage
        with self.services.store.session() as s:
            render = s.get(Render, render_id)
            page = render.page
            if panels and not page.panels:
                h = page.height // panels
                batches.set_panels(s, page.id, [{"bbox": [0, i * h, page.width, h]} for i in range(panels)])
            page_id, source_key = page.id, page.source_key
        with Image.open(io.BytesIO(storage.read_bytes(source_key))) as source, self.services.store.session() as s:
            work.record_thumbnails(s, page_id, store_thumbnails(storage, source))
        with self.services.store.session() as s:
            claim = renders.claim_render(s, render_id, "fake-worker", 3)
        composite = small_page((64, 96), color)
        with Image.open(io.BytesIO(composite)) as img:
            made = {"composite": storage.put_bytes(composite, ".png"), **store_thumbnails(storage, img)}
        with self.services.store.session() as s:
            renders.complete_render(s, render_id, claim.attempt, outputs or made, {"model": 0.01},
                                    "test-model", "fake-worker")

    def fail(self, render_id: int, error: str = "boom") -> None:
        from panelpaint.store import renders

        with self.services.store.session() as s:
            claim = renders.claim_render(s, render_id, "fake-worker", 3)
        with self.services.store.session() as s:
            renders.fail_render(s, render_id, claim.attempt, error)
