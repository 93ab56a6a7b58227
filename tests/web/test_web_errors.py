"""Errors as HTTP (`web/errors.py`): one status per typed error, a database outage as a 503 with
Retry-After logged once, an unexpected error's traceback logged once, no cookie for token logins."""
from __future__ import annotations

import logging

import pytest
from web_helpers import upload
from tests.panelpaint.comic_pages import small_page

from panelpaint.images import ImageError
from panelpaint.store.db import Store
from panelpaint.store.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from web.errors import RETRY_AFTER_SECONDS, status_of
from web.services.errors import NothingToDownload, QueueUnavailable, Refused


def test_one_status_for_each_typed_error():
    cases = {NotFound("x"): 404, Forbidden("x"): 403, InvalidInput("x"): 400, ImageError("x"): 400,
             IllegalTransition("x"): 409, Refused("x"): 409, NothingToDownload("x"): 409, QueueUnavailable("x"): 503}
    assert {type(e).__name__: status_of(e).code for e in cases} == {type(e).__name__: c for e, c in cases.items()}
    assert status_of(RuntimeError("x")) is None  # anything else is a 500


def unreachable(kind: str, tmp_path) -> Store:  # noqa: ANN001
    if kind == "postgresql":  # nothing listens on port 1: the connection is refused
        return Store("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    return Store(f"sqlite:///{tmp_path}")  # a folder: SQLite cannot open it


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_database_outage_is_a_503_with_retry_after_logged_once(kind, app, client, artist, api_token, tmp_path,
                                                                  caplog, monkeypatch):
    auth = {"Authorization": f"Bearer {api_token()}"}
    services = app.extensions["panelpaint"]
    up, down = services.store, unreachable(kind, tmp_path)
    monkeypatch.setattr(services, "store", down)
    with caplog.at_level(logging.INFO):
        for path in ("/api/v1/batches", "/api/v1/batches/1", "/api/v1/me"):
            response = client.get(path, headers=auth)
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
            assert response.get_json()["error"] == "service_unavailable"
        page = artist.get("/batches")  # the dashboard: a friendly page that asks nobody who is logged in
        assert page.status_code == 503 and page.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert "cannot reach its database" in page.get_data(as_text=True)
        assert artist.post_form("/batches", {"name": "x"}).status_code in (400, 503)  # (its CSRF token is gone)
        logged = [r for r in caplog.records if "database" in r.getMessage()]
        assert len(logged) == 1 and logged[0].exc_info is None and "unreachable" in logged[0].getMessage()

        monkeypatch.setattr(services, "store", up)
        assert client.get("/api/v1/batches", headers=auth).status_code == 200
        assert [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
    down.dispose()


def test_an_unexpected_error_is_a_500_logged_once(app, artist, caplog, monkeypatch):
    from web.services import queue

    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error handler answers

    def broken(**_kwargs) -> dict:
        raise RuntimeError("a bug")

    monkeypatch.setattr(queue, "snapshot", broken)
    with caplog.at_level(logging.ERROR):
        response = artist.get("/workers")
    assert response.status_code == 500 and "it has been logged" in response.get_data(as_text=True)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "a bug" in str(tracebacks[0].exc_info[1])


def test_a_token_login_lasts_one_request_and_sets_no_cookie(client, api_token):
    auth = {"Authorization": f"Bearer {api_token()}"}
    response = client.get("/api/v1/me", headers=auth)
    assert response.status_code == 200 and not response.headers.getlist("Set-Cookie")
    assert client.get("/api/v1/me").status_code == 401  # nothing was remembered


def test_work_saved_while_the_broker_is_down_is_a_503_that_says_so(app, api_token, style_id, worker, monkeypatch):
    from panelpaint import queue

    auth = {"Authorization": f"Bearer {api_token()}"}
    client = app.test_client()
    made = client.post("/api/v1/batches", headers=auth, content_type="multipart/form-data",
                       data={"name": "b", "style_id": style_id, "pages": [upload(small_page(), "p.png")]}).get_json()
    page = made["pages"][0]
    worker.fail(page["render_id"])

    def down(*_a, **_k):  # noqa: ANN002, ANN003
        raise ConnectionError("broker down")

    monkeypatch.setattr(queue, "enqueue_render", down)
    response = client.post(f"/api/v1/pages/{page['id']}/retry", headers=auth)
    assert response.status_code == 503 and "Saved, but the work queue cannot be reached" in response.get_json()["message"]
    assert client.get(f"/api/v1/pages/{page['id']}", headers=auth).get_json()["status"] == "queued"  # kept
