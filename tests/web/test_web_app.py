"""The app as a whole: login required on every route, CSRF, cookies, headers, limits, roles, no torch."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from web_helpers import PASSWORD, build_app, email, upload
from tests.panelpaint.comic_pages import small_page

PUBLIC = {"auth.login", "static", "healthz", "readyz"}


def concrete_url(rule) -> str:  # noqa: ANN001
    """A URL for a rule with every path argument filled in (ids that do not need to exist)."""
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", "1" if "id" in arg else "png", url)
    return url


def test_every_route_but_login_static_and_healthz_needs_a_user(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        url = concrete_url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            checked += 1
            if rule.endpoint.startswith("api."):
                assert response.status_code == 401, (method, url, response.status_code)
                assert response.is_json and response.get_json()["error"] == "unauthorized"
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            else:
                # Anonymous POSTs go to the login page too, before any CSRF check.
                assert response.status_code == 302, (method, url, response.status_code)
                assert response.location.startswith("/login?next="), (method, url, response.location)
    assert checked > 40


def test_public_routes(client):
    assert client.get("/login").status_code == 200
    # The test apps' broker address answers nothing: up, degraded (tests/web/test_web_health.py).
    assert client.get("/healthz").get_json() == {"status": "degraded", "database": "ok", "broker": "ConnectionError"}
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200


def test_login_logout_and_wrong_password(client):
    bad = client.post_form("/login", {"email": email("alpha", "artist"), "password": "nope-nope-nope"})
    assert bad.status_code == 401 and "Wrong e-mail or password" in bad.get_data(as_text=True)
    assert client.get("/batches").status_code == 302
    ok = client.login("alpha", "artist")
    assert ok.status_code == 302 and ok.location == "/batches"
    assert client.get("/").location == "/batches"
    page = client.get("/batches")
    assert page.status_code == 200 and "artist@alpha.test" in page.get_data(as_text=True)
    assert client.post_form("/logout").status_code == 302
    assert client.get("/batches").status_code == 302


@pytest.mark.parametrize("target,expected", [
    ("/styles", "/styles"),
    ("https://evil.example/", "/batches"),
    ("//evil.example/x", "/batches"),
    ("/\\evil.example", "/batches"),
    ("javascript:alert(1)", "/batches"),
])
def test_login_next_never_redirects_off_site(client, target, expected):
    response = client.post_form(f"/login?next={target}", {"email": email("alpha", "artist"), "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == expected


def test_post_without_csrf_token_is_refused(artist, style_id):
    # Logged in, but no token: refused with 400 and a friendly page, nothing created.
    response = artist.post("/styles", data={"name": "x", "image": upload(small_page(), "s.png")})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert artist.post("/logout").status_code == 400
    assert artist.post("/account/tokens", data={"name": "t"}).status_code == 400
    forged = artist.post("/styles", data={"name": "x", "csrf_token": "forged", "image": upload(small_page(), "s.png")})
    assert forged.status_code == 400
    listing = artist.get("/styles").get_data(as_text=True)
    assert listing.count('class="thumb style-card"') == 1  # only the fixture's style


def test_login_form_needs_csrf_too(client):
    response = client.post("/login", data={"email": email("alpha", "artist"), "password": PASSWORD})
    assert response.status_code == 400


def test_session_cookie_flags(app_settings, queue_calls):
    from web_helpers import Client

    app = build_app(app_settings.model_copy(update={"session_cookie_secure": True}))
    flask_client = app.test_client()
    flask_client.environ_base["wsgi.url_scheme"] = "https"  # a Secure cookie is only sent back over https
    c = Client(flask_client)
    response = c.login("alpha", "artist")
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    app.extensions["panelpaint"].store.dispose()


def test_security_headers(artist):
    response = artist.get("/batches")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_login_is_rate_limited(client):
    codes = [client.post_form("/login", {"email": email("alpha", "artist"), "password": "wrong-wrong"}).status_code
             for _ in range(6)]
    assert codes[:5] == [401] * 5
    assert codes[5] == 429
    # Even the right password is refused until the window passes.
    blocked = client.post_form("/login", {"email": email("alpha", "artist"), "password": PASSWORD})
    assert blocked.status_code == 429 and "Too many login attempts" in blocked.get_data(as_text=True)
    assert client.get("/login").status_code == 200  # only POSTs count


@pytest.mark.parametrize("proxies", [0, 1])
def test_login_rate_limit_counts_clients_behind_a_trusted_proxy(app_settings, queue_calls, proxies):
    from web_helpers import Client

    app = build_app(app_settings.model_copy(update={"proxy_fix": proxies}))

    def client_at(address: str) -> Client:
        flask_client = app.test_client()
        flask_client.environ_base["HTTP_X_FORWARDED_FOR"] = address  # set by the proxy for each client
        return Client(flask_client)

    first, second = client_at("203.0.113.7"), client_at("198.51.100.9")
    wrong = {"email": email("alpha", "artist"), "password": "wrong-wrong"}
    assert [first.post_form("/login", wrong).status_code for _ in range(6)] == [401] * 5 + [429]
    # Trusting the proxy, the second client has its own budget; trusting none, both are the proxy.
    assert second.post_form("/login", wrong).status_code == (401 if proxies else 429)
    app.extensions["panelpaint"].store.dispose()


def test_upload_over_the_limit_is_413_before_the_view(app, artist, style_id, monkeypatch):
    from web.services import batches

    called = []
    monkeypatch.setattr(batches, "create_batch", lambda *a, **k: called.append(1))
    big = b"\0" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = artist.post_form("/batches", {"name": "big", "style_id": style_id, "pages": upload(big, "big.png")})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert called == []


def test_api_upload_over_the_limit_is_a_json_413(app, client, api_token, monkeypatch):
    from web.services import batches

    called = []
    monkeypatch.setattr(batches, "create_batch", lambda *a, **k: called.append(1))
    big = b"\0" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/api/v1/batches", data={"name": "big", "pages": upload(big, "big.png")},
                           headers={"Authorization": f"Bearer {api_token()}"})
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    assert called == []


def test_form_part_limits_are_configured(app):
    assert app.config["MAX_FORM_PARTS"] >= 20
    assert app.config["MAX_FORM_MEMORY_SIZE"] == 1024 * 1024


def test_too_many_form_parts_is_refused(app, artist, style_id):
    data = {f"field{i}": "x" for i in range(app.config["MAX_FORM_PARTS"] + 5)}
    response = artist.post_form("/batches", {**data, "name": "many", "style_id": style_id},
                                content_type="multipart/form-data")
    assert response.status_code == 413


def test_roles(app, artist, reviewer, admin):
    # Reviewers do not submit work...
    assert reviewer.get("/batches/new").status_code == 403
    assert reviewer.post_form("/styles", {"name": "x", "image": upload(small_page(), "x.png")}).status_code == 403
    assert "New batch" not in reviewer.get("/batches").get_data(as_text=True)
    # ...artists do, admins do everything.
    assert artist.get("/batches/new").status_code == 200
    assert admin.get("/batches/new").status_code == 200
    from web.views.auth import PERMISSIONS
    from panelpaint.store.schema import Role

    assert PERMISSIONS["review"] == {Role.admin, Role.reviewer}
    assert PERMISSIONS["submit"] == {Role.admin, Role.artist}
    assert all(Role.admin in roles for roles in PERMISSIONS.values())


def test_friendly_404_page(artist):
    response = artist.get("/batches/999999")
    assert response.status_code == 404
    assert "another studio" in response.get_data(as_text=True)


def test_web_never_imports_torch():
    code = (
        "import sys\n"
        "import importlib, pkgutil, web\n"
        "for m in pkgutil.walk_packages(web.__path__, 'web.'):\n"
        "    importlib.import_module(m.name)\n"
        "from web import create_app\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert not any(m == 'worker' or m.startswith('worker.') for m in sys.modules), 'worker imported'\n"
        "assert not any(m == 'models' or m.startswith('models.') for m in sys.modules), 'models imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_app_factory_reads_settings_from_the_environment(tmp_path, monkeypatch, template_db):
    import shutil

    from web import create_app

    db = tmp_path / "env.db"
    shutil.copy(template_db, db)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("PANELPAINT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PANELPAINT_MAX_CONTENT_LENGTH", "123456")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["MAX_CONTENT_LENGTH"] == 123456
    assert app.test_client().get("/healthz").status_code == 200
    app.extensions["panelpaint"].store.dispose()


def test_admin_manages_the_studios_users(app, admin, artist, client):
    assert artist.get("/account/users").status_code == 403
    html = admin.get("/account/users").get_data(as_text=True)
    assert "artist@alpha.test" in html and "artist@beta.test" not in html
    made = admin.post_form("/account/users", {"email": "New@Alpha.test", "role": "reviewer", "password": "long-enough-pw"})
    assert made.status_code == 302
    assert client.login("alpha", "reviewer").status_code == 302  # seeded reviewer still fine
    newcomer = type(client)(app.test_client())
    response = newcomer.post_form("/login", {"email": "new@alpha.test", "password": "long-enough-pw"})
    assert response.status_code == 302
    bad = admin.post_form("/account/users", {"email": "x@alpha.test", "role": "boss", "password": "long-enough-pw"})
    assert bad.status_code == 400 and "role must be one of" in bad.get_data(as_text=True)
    short = admin.post_form("/account/users", {"email": "y@alpha.test", "role": "artist", "password": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.get_data(as_text=True)

    from panelpaint.store import accounts

    with app.extensions["panelpaint"].store.session() as s:
        artist_id = accounts.get_user_by_email(s, "artist@alpha.test").id
        beta_artist_id = accounts.get_user_by_email(s, "artist@beta.test").id
        admin_id = accounts.get_user_by_email(s, "admin@alpha.test").id
    assert admin.post_form(f"/account/users/{artist_id}/active", {"active": "0"}).status_code == 302
    # A disabled user is logged out at the next request and cannot log in again.
    assert artist.get("/batches").status_code == 302
    assert type(client)(app.test_client()).login("alpha", "artist").status_code == 401
    assert admin.post_form(f"/account/users/{beta_artist_id}/active", {"active": "0"}).status_code == 404
    own = admin.post_form(f"/account/users/{admin_id}/active", {"active": "0"}, follow_redirects=True)
    assert "cannot disable your own account" in own.get_data(as_text=True)


def test_healthz_fails_when_the_database_is_unreachable(tmp_path, queue_calls):
    from web_helpers import web_settings

    app = build_app(web_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "OperationalError", "broker": "ConnectionError"}
    app.extensions["panelpaint"].store.dispose()
