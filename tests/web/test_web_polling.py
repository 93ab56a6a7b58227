"""What a polling studio costs: a fixed number of SQL statements per status view whatever the
number of pages or batches, ETag/304 on the status endpoints, and reads that never wait for a
writer's lock."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from tests.panelpaint.comic_pages import small_page
from tests.testkit import KEY_A


def make_batch(app, style_id: int, pages: int, worker, finished: int = 0) -> int:  # noqa: ANN001
    """A batch of alpha's with `pages` queued pages, the first `finished` of them coloured."""
    from panelpaint.store import accounts, batches, renders

    store = app.extensions["panelpaint"].store
    key = app.extensions["panelpaint"].storage.put_bytes(small_page((64, 96)), ".png")  # the fake worker reads it
    with store.session() as s:
        artist = accounts.get_user_by_email(s, "artist@alpha.test")
        batch = batches.create_batch(s, artist.studio_id, artist.id, f"{pages} pages", style_id)
        rids = [renders.queue_new_page(s, batches.add_page(s, batch.id, f"{i}.png", key, 64, 96).id).id
                for i in range(pages)]
    for rid in rids[:finished]:
        worker.finish(rid)
    return batch.id


class Statements:
    """Counts the SQL statements the app's engine runs (SQLite's BEGIN is one of its own: left out)."""

    def __init__(self, engine):  # noqa: ANN001
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        if not statement.startswith("BEGIN"):
            self.count += 1

    def during(self, call) -> int:  # noqa: ANN001
        before = self.count
        response = call()
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return self.count - before


@pytest.fixture
def statements(app) -> Statements:  # noqa: ANN001
    return Statements(app.extensions["panelpaint"].store.engine)


@pytest.fixture
def bearer(api_token) -> dict[str, str]:  # noqa: ANN001
    return {"Authorization": f"Bearer {api_token()}"}


def test_batch_views_run_as_many_statements_for_40_pages_as_for_5(app, client, artist, bearer, style_id, worker,
                                                                    statements):
    small = make_batch(app, style_id, 5, worker, finished=2)
    big = make_batch(app, style_id, 40, worker, finished=10)
    client.get("/api/v1/me", headers=bearer)  # the token's first use is recorded once; not counted below
    for url, get in ((f"/api/v1/batches/{{}}", lambda u: client.get(u, headers=bearer)),
                     ("/batches/{}/status.json", artist.get),
                     ("/batches/{}", artist.get)):
        counts = [statements.during(lambda b=b: get(url.format(b))) for b in (small, big)]
        assert counts[0] == counts[1], (url, counts)
        assert counts[0] <= 14, (url, counts)  # the dashboard page adds the style list and the rejected count
    data = client.get(f"/api/v1/batches/{big}", headers=bearer).get_json()
    assert len(data["pages"]) == 40 and data["progress"]["succeeded"] == 10
    assert sum(1 for p in data["pages"] if p["result_url"]) == 10


def test_batch_lists_run_as_many_statements_for_10_batches_as_for_2(app, client, artist, bearer, style_id, worker,
                                                                     statements):
    client.get("/api/v1/me", headers=bearer)
    views = (lambda: client.get("/api/v1/batches", headers=bearer), lambda: artist.get("/batches/status.json"),
             lambda: artist.get("/batches"))
    for _ in range(2):
        make_batch(app, style_id, 3, worker, finished=1)
    few = [statements.during(view) for view in views]
    for _ in range(8):
        make_batch(app, style_id, 3, worker, finished=1)
    many = [statements.during(view) for view in views]
    assert few == many
    assert len(client.get("/api/v1/batches", headers=bearer).get_json()["batches"]) == 10


@pytest.mark.parametrize("dashboard", [False, True])
def test_status_endpoints_answer_304_until_something_changes(app, client, artist, bearer, style_id, worker,
                                                              dashboard):
    batch = make_batch(app, style_id, 3, worker)
    urls = ([f"/batches/{batch}/status.json", "/batches/status.json"] if dashboard
            else [f"/api/v1/batches/{batch}", "/api/v1/batches"])
    get = artist.get if dashboard else (lambda u, headers=None: client.get(u, headers={**bearer, **(headers or {})}))
    for url in urls:
        first = get(url)
        etag = first.headers["ETag"]
        assert first.status_code == 200 and etag and "no-cache" in first.headers["Cache-Control"]
        again = get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.get_data() == b""
        assert get(url, headers={"If-None-Match": '"something-else"'}).status_code == 200
    # Each change the batch's view shows gives a new tag and a full answer with what changed.
    first_render = _first_render(app, batch)
    changes = {"a panel coloured": lambda: _colour_a_panel(app, batch),
               "a page held for its panel check": lambda: _hold_last_page(app, batch),
               "a page's thumbnails made": lambda: _thumbnail_last_page(app, batch),
               "a page finished": lambda: worker.finish(first_render),
               "a page approved": lambda: _approve(app, first_render),
               "the batch cancelled": lambda: _cancel(app, batch)}
    for what, change in changes.items():
        before = get(urls[0])
        change()
        fresh = get(urls[0], headers={"If-None-Match": before.headers["ETag"]})
        assert fresh.status_code == 200 and fresh.headers["ETag"] != before.headers["ETag"], what
        assert fresh.get_json() != before.get_json(), what
        assert get(urls[0], headers={"If-None-Match": fresh.headers["ETag"]}).status_code == 304, what


def test_an_unchanged_batch_is_answered_without_building_its_status(app, client, artist, bearer, style_id, worker,
                                                                    monkeypatch):
    from web.services import batches

    batch = make_batch(app, style_id, 4, worker, finished=2)
    tags = {url: get(url).headers["ETag"] for url, get in
            ((f"/api/v1/batches/{batch}", lambda u: client.get(u, headers=bearer)),
             (f"/batches/{batch}/status.json", artist.get))}

    def built(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a 304 built the batch's status")

    monkeypatch.setattr(batches, "batch_status", built)
    monkeypatch.setattr(batches, "batch_pages", built)
    assert client.get(f"/api/v1/batches/{batch}", headers={**bearer, "If-None-Match": tags[
        f"/api/v1/batches/{batch}"]}).status_code == 304
    assert artist.get(f"/batches/{batch}/status.json", headers={"If-None-Match": tags[
        f"/batches/{batch}/status.json"]}).status_code == 304


def _approve(app, render_id: int) -> None:  # noqa: ANN001
    from panelpaint.store import accounts, reviews
    from panelpaint.store.schema import Render

    with app.extensions["panelpaint"].store.session() as s:
        reviewer = accounts.get_user_by_email(s, "reviewer@alpha.test")
        reviews.review(s, s.get(Render, render_id).page_id, None, reviewer.id, "approved")


def _cancel(app, batch_id: int) -> None:  # noqa: ANN001
    from panelpaint.store import batches

    with app.extensions["panelpaint"].store.session() as s:
        batches.cancel_batch(s, batch_id)


def _colour_a_panel(app, batch_id: int) -> None:  # noqa: ANN001
    from panelpaint.store.schema import Page

    with app.extensions["panelpaint"].store.session() as s:
        s.scalars(sa.select(Page).where(Page.batch_id == batch_id)).first().panels_done += 1


def _last_page(s, batch_id: int):  # noqa: ANN001, ANN202
    from panelpaint.store.schema import Page

    return s.scalars(sa.select(Page).where(Page.batch_id == batch_id).order_by(Page.position.desc())).first()


def _hold_last_page(app, batch_id: int) -> None:  # noqa: ANN001
    from panelpaint.store.schema import PanelCheck

    with app.extensions["panelpaint"].store.session() as s:
        _last_page(s, batch_id).panel_check = PanelCheck.awaiting


def _thumbnail_last_page(app, batch_id: int) -> None:  # noqa: ANN001
    import io

    from PIL import Image

    from panelpaint.store import work
    from panelpaint.thumbnails import store_thumbnails

    services = app.extensions["panelpaint"]
    with Image.open(io.BytesIO(small_page((64, 96)))) as image:
        keys = store_thumbnails(services.storage, image)
    with services.store.session() as s:
        work.record_thumbnails(s, _last_page(s, batch_id).id, keys)


def _first_render(app, batch_id: int) -> int:  # noqa: ANN001
    from panelpaint.store.schema import Page

    with app.extensions["panelpaint"].store.session() as s:
        return s.scalar(sa.select(Page.current_render_id).where(Page.batch_id == batch_id).order_by(Page.position))


def test_a_poll_does_not_wait_for_a_writer_nor_hold_one_up(app, client, bearer, style_id, worker):
    """While a worker's write transaction holds SQLite's write lock, a poll still answers; while a
    poll is being answered, a write still commits (neither waits out the busy timeout)."""
    batch = make_batch(app, style_id, 3, worker)
    client.get("/api/v1/me", headers=bearer)  # record the token's use now, so the polls below only read
    store = app.extensions["panelpaint"].store
    answered = threading.Event()
    with store.session() as s:
        from panelpaint.store import batches

        batches.add_page(s, batch, "held.png", KEY_A, 64, 96)  # the write lock is held from here on

        def poll() -> None:
            if client.get(f"/api/v1/batches/{batch}", headers=bearer).status_code == 200:
                answered.set()

        poller = threading.Thread(target=poll)
        poller.start()
        assert answered.wait(5), "a poll waited for a worker's write transaction"
        poller.join()
    assert len(client.get(f"/api/v1/batches/{batch}", headers=bearer).get_json()["pages"]) == 4


def test_the_openapi_document_describes_the_polled_answers(client, bearer):
    paths = client.get("/api/openapi.json", headers=bearer).get_json()["paths"]
    for path in ("/api/v1/batches", "/api/v1/batches/{batch_id}"):
        get = paths[path]["get"]
        assert {"200", "304"} <= set(get["responses"]) and "ETag" in get["responses"]["200"]["headers"]
        assert any(p["name"] == "If-None-Match" and p["in"] == "header" for p in get["parameters"])


def test_a_tokens_use_is_recorded_once_a_minute_not_on_every_poll(app, client, bearer):
    from panelpaint.store import accounts
    from panelpaint.store.schema import ApiToken
    from web.token_cache import TOKEN_CACHE

    store = app.extensions["panelpaint"].store
    seen: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))

    def last_used():  # noqa: ANN202
        with store.reading() as s:
            return s.scalar(sa.select(ApiToken.last_used_at))

    assert last_used() is None
    assert client.get("/api/v1/me", headers=bearer).status_code == 200  # a GET records the first use
    first = last_used()
    assert first is not None
    seen.clear()
    for _ in range(3):
        assert client.get("/api/v1/batches", headers=bearer).status_code == 200
    assert not [s for s in seen if s.lstrip().upper().startswith("UPDATE")] and last_used() == first
    with store.session() as s:
        s.scalar(sa.select(ApiToken)).last_used_at = first - accounts.TOKEN_TOUCH_INTERVAL
    app.extensions[TOKEN_CACHE].clear()  # as once its seconds are over: the token is read again
    assert client.get("/api/v1/batches", headers=bearer).status_code == 200
    assert last_used() > first - accounts.TOKEN_TOUCH_INTERVAL
