"""Polled status answers are built once per `status_max_age` for all the polls of one user and URL
(`web.status_cache`, on a real Redis): the workers' progress shows within it, the studio's own
changes at once, and no answer crosses to another user, studio or stack."""
from __future__ import annotations

import shutil
import time

import pytest
from test_web_polling import Statements, make_batch
from web_helpers import build_app, web_settings

# Long enough that a 2-core CI machine finishes a fake render and polls again inside it (0.6 s was
# not: CI once saw the second poll build a fresh answer).
MAX_AGE = 2.0


@pytest.fixture
def app_settings(tmp_path, template_db, redis_url):  # noqa: ANN001 - overrides conftest's: with Redis
    db = tmp_path / "web.db"
    shutil.copy(template_db, db)
    return web_settings(tmp_path, f"sqlite:///{db}", redis_url=redis_url, status_max_age=MAX_AGE)


@pytest.fixture
def bearer(api_token) -> dict[str, str]:  # noqa: ANN001
    return {"Authorization": f"Bearer {api_token()}"}


def _first_render(app, batch_id: int) -> int:  # noqa: ANN001
    from panelpaint.store.schema import Page

    with app.extensions["panelpaint"].store.session() as s:
        return s.query(Page).filter_by(batch_id=batch_id).order_by(Page.position).first().current_render_id


@pytest.mark.parametrize("dashboard", [False, True])
def test_polls_within_the_max_age_share_one_answer_and_progress_shows_after_it(app, client, artist, bearer, style_id,
                                                                               worker, dashboard):
    batch = make_batch(app, style_id, 3, worker)
    url = f"/batches/{batch}/status.json" if dashboard else f"/api/v1/batches/{batch}"
    get = artist.get if dashboard else (lambda u, headers=None: client.get(u, headers={**bearer, **(headers or {})}))
    statements = Statements(app.extensions["panelpaint"].store.engine)
    get(f"/batches/{batch}/status.json" if not dashboard else f"/api/v1/batches/{batch}")  # warm the other path
    first = get(url)
    assert first.get_json()["progress"]["succeeded"] == 0
    worker.finish(_first_render(app, batch))
    before = statements.count
    shared = get(url)
    built_again = statements.count - before
    assert shared.get_json() == first.get_json() and shared.headers["ETag"] == first.headers["ETag"]
    assert get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    # The shared answer reads nothing of the batch (only the login's own look-up of the user).
    assert built_again <= 2, built_again
    time.sleep(MAX_AGE + 0.2)
    fresh = get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert fresh.status_code == 200 and fresh.get_json()["progress"]["succeeded"] == 1


def test_the_studios_own_change_shows_at_once(app, client, artist, bearer, style_id, worker):
    batch = make_batch(app, style_id, 3, worker)
    url = f"/api/v1/batches/{batch}"
    assert client.get(url, headers=bearer).get_json()["cancelled"] is False
    assert artist.get("/batches/status.json").status_code == 200
    assert client.post(f"/api/v1/batches/{batch}/cancel", headers=bearer).status_code == 200
    assert client.get(url, headers=bearer).get_json()["cancelled"] is True  # well within the max age
    # A change made through the dashboard clears the API's answers too (one studio, one generation).
    other = make_batch(app, style_id, 2, worker)
    listed = client.get("/api/v1/batches", headers=bearer).get_json()["batches"]
    assert [b["cancelled"] for b in listed if b["id"] == other] == [False]
    assert artist.post_form(f"/batches/{other}/cancel", {}).status_code in (200, 302)
    listed = client.get("/api/v1/batches", headers=bearer).get_json()["batches"]
    assert [b["cancelled"] for b in listed if b["id"] == other] == [True]


def test_no_answer_crosses_to_another_user_or_studio(app, client, api_token, artist, style_id, worker):
    batch = make_batch(app, style_id, 2, worker)  # made by alpha's artist
    mine = {"Authorization": f"Bearer {api_token('alpha', 'artist')}"}
    colleague = {"Authorization": f"Bearer {api_token('alpha', 'reviewer')}"}
    stranger = {"Authorization": f"Bearer {api_token('beta', 'artist')}"}
    url = f"/api/v1/batches/{batch}"
    assert client.get(url, headers=mine).get_json()["mine"] is True
    assert client.get(url, headers=colleague).get_json()["mine"] is False
    assert client.get(url, headers=stranger).status_code == 404
    assert [b["id"] for b in client.get("/api/v1/batches", headers=stranger).get_json()["batches"]] == []


def test_two_stacks_on_one_redis_keep_their_own_answers(app, client, bearer, style_id, worker, tmp_path, template_db,
                                                        redis_url):
    """A second stack (its own database) on the same Redis, with the same ids, sees its own batch."""
    from panelpaint.store import accounts, styles

    batch = make_batch(app, style_id, 3, worker)
    assert len(client.get(f"/api/v1/batches/{batch}", headers=bearer).get_json()["pages"]) == 3
    other_db = tmp_path / "other.db"
    shutil.copy(template_db, other_db)
    other = build_app(web_settings(tmp_path / "other", f"sqlite:///{other_db}", redis_url=redis_url,
                                   status_max_age=MAX_AGE))
    try:
        with other.extensions["panelpaint"].store.session() as s:
            user = accounts.get_user_by_email(s, "artist@alpha.test")
            token = accounts.create_api_token(s, user.id, "other")[1]
            style = styles.add_style_reference(s, user.studio_id, "style", [], "ab" * 32, 48, 48).id
        assert style == style_id
        twin = make_batch(other, style, 1, None)
        assert twin == batch  # same ids in both stacks
        answer = other.test_client().get(f"/api/v1/batches/{twin}", headers={"Authorization": f"Bearer {token}"})
        assert len(answer.get_json()["pages"]) == 1
    finally:
        other.extensions["panelpaint"].store.dispose()


def test_without_redis_every_poll_is_built_fresh(tmp_path, template_db, queue_calls):  # noqa: ANN001
    from web_helpers import FakeWorker

    db = tmp_path / "web.db"
    shutil.copy(template_db, db)
    app = build_app(web_settings(tmp_path, f"sqlite:///{db}", redis_url="redis://127.0.0.1:1/0", status_max_age=30))
    try:
        from panelpaint.store import accounts, styles

        with app.extensions["panelpaint"].store.session() as s:
            user = accounts.get_user_by_email(s, "artist@alpha.test")
            token = accounts.create_api_token(s, user.id, "t")[1]
            style = styles.add_style_reference(s, user.studio_id, "style", [], "ab" * 32, 48, 48).id
        worker = FakeWorker(app)
        batch = make_batch(app, style, 2, worker)
        get = app.test_client().get
        headers = {"Authorization": f"Bearer {token}"}
        assert get(f"/api/v1/batches/{batch}", headers=headers).get_json()["progress"]["succeeded"] == 0
        worker.finish(_first_render(app, batch))
        assert get(f"/api/v1/batches/{batch}", headers=headers).get_json()["progress"]["succeeded"] == 1
    finally:
        app.extensions["panelpaint"].store.dispose()


def test_a_current_copy_is_confirmed_from_the_cache_too(app, client, bearer, style_id, worker):
    """Clients that send back their ETag mostly get 304s: the poll that found the tag current
    leaves it for the others, so their 304s read nothing of the batch either."""
    batch = make_batch(app, style_id, 3, worker)
    url = f"/api/v1/batches/{batch}"
    statements = Statements(app.extensions["panelpaint"].store.engine)
    tag = client.get(url, headers=bearer).headers["ETag"]
    time.sleep(MAX_AGE + 0.2)  # the shared answer is gone; the batch is unchanged
    current = {**bearer, "If-None-Match": tag}
    assert client.get(url, headers=current).status_code == 304  # found current by reading the batch
    before = statements.count
    assert client.get(url, headers=current).status_code == 304
    assert statements.count - before <= 1, statements.count - before  # the token's look-up only
    full = client.get(url, headers=bearer)  # a client with no copy still gets the whole answer
    assert full.status_code == 200 and full.headers["ETag"] == tag and len(full.get_json()["pages"]) == 3
