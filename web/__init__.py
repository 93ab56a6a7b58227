"""The Flask review dashboard and REST API (never imports torch): the app factory.

`create_app(settings=None, test_config=None)` builds a fresh app, flaskr style; production runs
it under gunicorn (`gunicorn "web:create_app()"`). Every route needs a logged-in user except the
login page, static files, `/healthz` (the database and the broker, each reported) and `/readyz`
(both answer: a deployment's readiness probe); the REST API under `/api/` authenticates with
bearer tokens instead and is exempt from CSRF (it never reads the session cookie).
"""
from __future__ import annotations

from typing import Any

from flask import Flask, abort, jsonify, redirect, request, url_for
from flask_login import current_user

from panelpaint.settings import Settings, load_settings

# Endpoints anyone may reach; the API blueprint checks its own bearer tokens.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static", "healthz", "readyz"})
READY_RETRY_AFTER = 5  # seconds a client of /readyz is told to wait while a dependency is down

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """Build the dashboard for `settings` (read from the environment when None)."""
    from panelpaint import limits
    from panelpaint.store.db import Store

    from . import errors
    from .converters import CONVERTERS
    from .extensions import Sessions, csrf, limiter, login_manager
    from .polling import STATUS_CACHE, studio_changed
    from .services import Services, close_db
    from .status_cache import StatusCache
    from .token_cache import TOKEN_CACHE, TokenCache
    from .services.batches import page_thumb_url

    settings = settings or load_settings()
    app = Flask(__name__)
    app.url_map.converters.update(CONVERTERS)  # before any blueprint's rules are built
    app.session_interface = Sessions()
    app.config.from_mapping(
        SECRET_KEY=settings.effective_secret_key(),
        # Werkzeug refuses bigger bodies with 413; `_refuse_oversized_body` does so before any view.
        MAX_CONTENT_LENGTH=settings.max_content_length,
        # Caps on multipart parts and on non-file field memory (CVE-2023-25577, CVE-2023-46136);
        # a batch may carry one part per page, so the cap follows the archive entry limit.
        MAX_FORM_PARTS=settings.max_archive_entries + 50,
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        # A reviewer keeps a page open for a long time; the token still dies with the session.
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        RATELIMIT_STORAGE_URI=settings.effective_redis_url(),
        RATELIMIT_KEY_PREFIX="panelpaint-web",
        LOGIN_RATE_LIMIT=settings.login_rate_limit,
        # The line art a style preview colours (None: samples/sketch.png, else a drawn one).
        SAMPLE_SKETCH=None,
    )
    if test_config:
        app.config.update(test_config)

    store = app.config.get("STORE") or Store(settings.database_url)
    app.extensions["panelpaint"] = Services(settings=settings, store=store)

    # Order matters: size guard, then login guard, then the limiter and CSRF (registered by
    # init_app), so an anonymous POST is sent to the login page rather than told its token is missing.
    app.before_request(_refuse_oversized_body)
    app.before_request(_require_login)
    login_manager.init_app(app)
    limiter.init_app(app)
    csrf.init_app(app)
    app.after_request(_security_headers)
    app.after_request(studio_changed)
    if settings.token_cache_seconds > 0:
        app.extensions[TOKEN_CACHE] = TokenCache(settings.token_cache_seconds)
    if settings.status_max_age > 0:
        app.extensions[STATUS_CACHE] = StatusCache(settings.effective_redis_url(), settings.status_max_age,
                                                   namespace=settings.database_url)
    app.teardown_appcontext(close_db)
    if settings.proxy_fix > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind N trusted proxies the client address (the login rate limit's key), the scheme and
        # the host come from their X-Forwarded-* headers; a client cannot forge more hops than N.
        n = settings.proxy_fix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    from .views import BLUEPRINTS, api, auth

    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    csrf.exempt(api.bp)
    errors.register(app, store.engine)

    @app.get("/healthz")
    def healthz():
        """The database and the broker, each "ok" or the error it gave. 503 only when the database
        is down (the dashboard can do nothing); with the broker down work is saved and sent once
        it answers again, so the service is "degraded" but up."""
        checks = _dependencies(app)
        status = "ok" if _ready(checks) else "error" if checks["database"] != "ok" else "degraded"
        return jsonify(status=status, **checks), 503 if status == "error" else 200

    @app.get("/readyz")
    def readyz():
        """Ready to take work: the database and the broker both answer (compose's health check)."""
        checks = _dependencies(app)
        response = jsonify(status="ok" if _ready(checks) else "unavailable", **checks)
        if _ready(checks):
            return response
        response.status_code = 503
        response.headers["Retry-After"] = str(READY_RETRY_AFTER)
        return response

    @app.get("/")
    def index():
        return redirect(url_for("batches.index"))

    app.jinja_env.globals["can"] = auth.can
    app.jinja_env.globals["page_thumb"] = page_thumb_url
    app.jinja_env.globals["limits"] = limits
    app.jinja_env.filters["ago"] = _ago
    return app


def _dependencies(app: Flask) -> dict[str, str]:
    """{"database": ..., "broker": ...}: "ok", or the name of the error each gave (logged once per change)."""
    from panelpaint import queue

    services = app.extensions["panelpaint"]
    checks = {}
    for name, probe in (("database", services.ping), ("broker", lambda: queue.ping(services.settings))):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means unavailable; say which
            checks[name] = type(exc).__name__
    last = app.extensions.setdefault("panelpaint.health", {})
    for name, state in checks.items():
        if last.get(name, "ok") != state:  # one line when a dependency goes or comes back, not per probe
            app.logger.warning("health check: %s %s", name, "answers again" if state == "ok" else f"unreachable ({state})")
        last[name] = state
    return checks


def _ready(checks: dict[str, str]) -> bool:
    return all(state == "ok" for state in checks.values())


def _refuse_oversized_body():
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        abort(413)


def _require_login():
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS or request.blueprint == "api":
        return None  # unknown URLs 404 as usual; the API answers 401 itself
    if not current_user.is_authenticated:
        from .extensions import login_manager

        return login_manager.unauthorized()
    return None


def _security_headers(response):
    # nosniff everywhere, so an uploaded image is never run as HTML or script by the browser.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


def _ago(value) -> str:
    """A short 'how long ago' for timestamps in tables."""
    import datetime as dt

    if not value:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    seconds = int((dt.datetime.now(dt.timezone.utc) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"
