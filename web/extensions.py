"""The Flask extensions of the dashboard: login manager, CSRF protection, the login rate limiter,
and cookie sessions that a request logged in by an API token never writes.

They are module globals bound to each app in `create_app` (flaskr style), so blueprints can use
their decorators at import time.
"""
from __future__ import annotations

from flask import g
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."
login_manager.login_message_category = "info"
# A stolen session cookie used from another address or browser is logged out.
login_manager.session_protection = "strong"

csrf = CSRFProtect()

# Storage comes from RATELIMIT_STORAGE_URI (Redis in production, memory:// in tests); if Redis is
# unreachable the limiter falls back to counting in memory rather than refusing every login.
limiter = Limiter(get_remote_address, default_limits=[], in_memory_fallback_enabled=True)


class Sessions(SecureCookieSessionInterface):
    """Cookie sessions, except for a request the API logged in by its token (`token_login`): its
    login lasts for that request only, and the response carries no cookie (Flask-Login's documented
    way to keep token logins out of the session)."""

    def save_session(self, app, session, response) -> None:  # noqa: ANN001
        if g.get("token_login"):
            return
        super().save_session(app, session, response)


def token_login(user) -> None:  # noqa: ANN001 - a flask_login.UserMixin
    """Make `user` the current user of this request only (the API's bearer token)."""
    from flask_login import login_user

    g.token_login = True
    login_user(user)
