"""A dashboard process trusts an API token it has just checked for `token_cache_seconds`, for
reads only (`web.token_cache`): polls skip the token's query, a write always checks it, a change
made through this process applies at once, and one made elsewhere within those seconds."""
from __future__ import annotations

import shutil
import time

import pytest
import sqlalchemy as sa
from test_web_polling import make_batch
from web_helpers import build_app, web_settings

SECONDS = 1.0


@pytest.fixture
def app_settings(tmp_path, template_db):  # noqa: ANN001 - overrides conftest's: a short cache
    db = tmp_path / "web.db"
    shutil.copy(template_db, db)
    return web_settings(tmp_path, f"sqlite:///{db}", token_cache_seconds=SECONDS)


def _token_reads(app) -> list[str]:  # noqa: ANN001
    seen: list[str] = []
    sa.event.listen(app.extensions["panelpaint"].store.engine, "before_cursor_execute",
                    lambda *a: seen.append(a[2]) if "api_token" in a[2] else None)
    return seen


def _revoke_elsewhere(app, plaintext: str) -> None:  # noqa: ANN001
    """Revoke the token as another process would: in the database, behind this app's back."""
    from panelpaint.store import accounts
    from panelpaint.store.schema import ApiToken, utcnow

    with app.extensions["panelpaint"].store.session() as s:
        s.scalar(sa.select(ApiToken).where(ApiToken.token_hash == accounts.hash_token(plaintext))).revoked_at = utcnow()


def test_polls_within_the_seconds_check_the_token_once(app, client, api_token):
    bearer = {"Authorization": f"Bearer {api_token()}"}
    reads = _token_reads(app)
    for _ in range(5):
        assert client.get("/api/v1/batches", headers=bearer).status_code == 200
    assert len([r for r in reads if r.lstrip().upper().startswith("SELECT")]) == 1, reads
    me = client.get("/api/v1/me", headers=bearer).get_json()
    assert (me["email"], me["role"]) == ("artist@alpha.test", "artist")  # the cached owner is the right user


def test_a_token_revoked_elsewhere_still_reads_for_the_seconds_then_not(app, client, api_token):
    plaintext = api_token()
    bearer = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/batches", headers=bearer).status_code == 200
    _revoke_elsewhere(app, plaintext)
    checked = time.monotonic()
    assert client.get("/api/v1/batches", headers=bearer).status_code == 200  # the documented window
    assert time.monotonic() - checked < SECONDS
    time.sleep(SECONDS + 0.1)
    assert client.get("/api/v1/batches", headers=bearer).status_code == 401


def test_a_write_always_checks_its_token(app, client, api_token, style_id):
    plaintext = api_token()
    bearer = {"Authorization": f"Bearer {plaintext}"}
    batch = make_batch(app, style_id, 1, None)
    assert client.get(f"/api/v1/batches/{batch}", headers=bearer).status_code == 200
    _revoke_elsewhere(app, plaintext)
    assert client.post(f"/api/v1/batches/{batch}/cancel", headers=bearer).status_code == 401
    assert client.get(f"/api/v1/batches/{batch}", headers=bearer).get_json()["cancelled"] is False


def test_a_user_disabled_through_this_process_is_refused_at_once(app, client, api_token, admin):
    from panelpaint.store import accounts

    bearer = {"Authorization": f"Bearer {api_token('alpha', 'reviewer')}"}
    assert client.get("/api/v1/batches", headers=bearer).status_code == 200
    with app.extensions["panelpaint"].store.session() as s:
        reviewer = accounts.get_user_by_email(s, "reviewer@alpha.test").id
    assert admin.post_form(f"/account/users/{reviewer}/active", {"active": "0"}).status_code == 302
    assert client.get("/api/v1/batches", headers=bearer).status_code == 401


def test_with_no_seconds_every_read_checks_its_token(tmp_path, template_db, queue_calls):  # noqa: ANN001
    from panelpaint.store import accounts

    db = tmp_path / "web.db"
    shutil.copy(template_db, db)
    app = build_app(web_settings(tmp_path, f"sqlite:///{db}", token_cache_seconds=0))
    try:
        with app.extensions["panelpaint"].store.session() as s:
            plaintext = accounts.create_api_token(s, accounts.get_user_by_email(s, "artist@alpha.test").id, "t")[1]
        bearer = {"Authorization": f"Bearer {plaintext}"}
        client = app.test_client()
        assert client.get("/api/v1/batches", headers=bearer).status_code == 200
        _revoke_elsewhere(app, plaintext)
        assert client.get("/api/v1/batches", headers=bearer).status_code == 401
    finally:
        app.extensions["panelpaint"].store.dispose()


def test_a_client_polling_all_the_time_is_checked_again_once_the_seconds_are_over(app, client, api_token):
    """Polls faster than the seconds run out never keep an entry alive: each lasts from its check."""
    plaintext = api_token()
    bearer = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/batches", headers=bearer).status_code == 200
    _revoke_elsewhere(app, plaintext)
    deadline = time.monotonic() + 3 * SECONDS
    while client.get("/api/v1/batches", headers=bearer).status_code == 200:
        assert time.monotonic() < deadline, "a revoked token still read after three times its seconds"
        time.sleep(SECONDS / 5)
