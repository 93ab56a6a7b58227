"""The webhooks page (admins): endpoints with their secrets, bad URLs refused in place, the
delivery log with each delivery's attempts and last answer, and studios kept apart."""
from __future__ import annotations

import re

from web_helpers import upload

from tests.panelpaint.comic_pages import small_page
from test_web_batches import batch_id_of, create


def test_admin_adds_an_endpoint_and_sees_the_delivery_log(app, admin, artist, style_id, worker, queue_calls,
                                                           login_as):
    from panelpaint.store import webhooks

    assert artist.get("/webhooks").status_code == 403
    bad = admin.post_form("/webhooks", {"url": "ftp://studio.example/hooks"})
    assert bad.status_code == 400 and "must be an http:// or https:// address" in bad.get_data(as_text=True)
    added = admin.post_form("/webhooks", {"url": "https://studio.example/hooks"}, follow_redirects=True)
    html = added.get_data(as_text=True)
    assert "https://studio.example/hooks" in html and "X-Panelpaint-Signature" in html
    secret = re.search(r"<code data-secret>([0-9a-f]{64})</code>", html).group(1)

    batch_id = batch_id_of(create(artist, style_id, [upload(small_page(), "a.png")], name="Chapter 9"))
    worker.finish(queue_calls.renders[0])
    services = app.extensions["panelpaint"]
    with services.store.session() as s:
        (delivery_id,) = webhooks.announce_ended(s)
        (send,) = webhooks.claim_due(s, 30)
        request = webhooks.outgoing(s, send)
    assert webhooks.verify(secret, request.body, request.headers["X-Panelpaint-Signature"])
    with services.store.session() as s:
        webhooks.record_attempt(s, send, 502, "HTTP 502 Bad Gateway", max_attempts=5, backoff_seconds=60)
    log = admin.get("/webhooks").get_data(as_text=True)
    row = re.search(rf'<tr data-delivery="{delivery_id}">(.*?)</tr>', log, re.S).group(1)
    assert "batch.finished" in row and "Chapter 9" in row and f"/batches/{batch_id}" in row
    assert ">pending<" in row and "<td>1</td>" in row and "HTTP 502" in row and "UTC" in row

    # Another studio's admin can neither see nor remove it.
    other = login_as("beta", "admin")
    theirs = other.get("/webhooks").get_data(as_text=True)
    assert "No endpoint yet" in theirs and "Nothing sent yet" in theirs
    from panelpaint.store import accounts

    with services.store.session() as s:
        (hook,) = webhooks.list_webhooks(s, accounts.get_studio_by_name(s, "Alpha").id)
        hook_id = hook.id
    assert other.post_form(f"/webhooks/{hook_id}/delete").status_code == 404
    removed = admin.post_form(f"/webhooks/{hook_id}/delete", follow_redirects=True).get_data(as_text=True)
    assert "Webhook removed" in removed and "No endpoint yet" in removed and "Nothing sent yet" in removed


def test_webhooks_through_the_api(app, api_token):
    admin = {"Authorization": f"Bearer {api_token('alpha', 'admin')}"}
    artist = {"Authorization": f"Bearer {api_token('alpha', 'artist')}"}
    client = app.test_client()
    assert client.get("/api/v1/webhooks", headers=artist).status_code == 403
    bad = client.post("/api/v1/webhooks", json={"url": "not a url"}, headers=admin)
    assert bad.status_code == 400 and "http:// or https://" in bad.get_json()["message"]
    made = client.post("/api/v1/webhooks", json={"url": "https://tools.example/pp"}, headers=admin)
    assert made.status_code == 201 and len(made.get_json()["secret"]) == 64
    hook_id = made.get_json()["id"]
    assert [h["url"] for h in client.get("/api/v1/webhooks", headers=admin).get_json()["webhooks"]] == [
        "https://tools.example/pp"]
    assert client.get("/api/v1/webhooks/deliveries", headers=admin).get_json() == {"deliveries": []}
    other = {"Authorization": f"Bearer {api_token('beta', 'admin')}"}
    assert client.delete(f"/api/v1/webhooks/{hook_id}", headers=other).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{hook_id}", headers=admin).status_code == 204
    assert client.get("/api/v1/webhooks", headers=admin).get_json() == {"webhooks": []}
