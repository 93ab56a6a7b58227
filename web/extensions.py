"""The Flask extensions of the dashboard: login manager, CSRF protection and the login rate limiter.

They are module globals bound to each app in `create_app` (flaskr style), so blueprints can use
their decorators at import time.
"""
from __future__ import annotations

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
