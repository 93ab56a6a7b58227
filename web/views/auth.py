"""Logging in and out, the account page with API tokens, and who may do what (roles).

Roles: reviewers review (approve, reject, comment, re-render while reviewing), artists submit
(batches, pages, styles, retries, cancels, re-renders), admins do everything. Everyone in a
studio may look at the studio's batches, styles and workers.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import UserMixin, current_user, login_required, login_user, logout_user

from panelpaint.store.errors import InvalidInput
from panelpaint.store.schema import Role

from ..extensions import limiter, login_manager
from ..services import accounts, rollback

bp = Blueprint("auth", __name__)

PERMISSIONS: dict[str, frozenset[Role]] = {
    "view": frozenset({Role.admin, Role.artist, Role.reviewer}),
    "submit": frozenset({Role.admin, Role.artist}),
    "review": frozenset({Role.admin, Role.reviewer}),
    "rerender": frozenset({Role.admin, Role.artist, Role.reviewer}),
    "admin": frozenset({Role.admin}),
}


@dataclass(frozen=True)
class SessionUser(UserMixin):
    """The logged-in user as plain values, detached from any database session."""

    id: int
    studio_id: int
    studio_name: str
    email: str
    role: Role
    session_version: int = 0

    @classmethod
    def from_row(cls, user) -> "SessionUser":  # noqa: ANN001 - schema.User
        return cls(user.id, user.studio_id, user.studio.name, user.email, Role(user.role), user.session_version or 0)

    @classmethod
    def from_token(cls, owner) -> "SessionUser":  # noqa: ANN001 - store.accounts.TokenOwner
        return cls(owner.user_id, owner.studio_id, owner.studio_name, owner.email, owner.role, owner.session_version)

    def get_id(self) -> str:
        """What the session cookie keeps: the user and the session version it was made under."""
        return f"{self.id}:{self.session_version}"

    def can(self, action: str) -> bool:
        return self.role in PERMISSIONS[action]


@login_manager.user_loader
def _load_user(session_id: str) -> SessionUser | None:
    user_id, _, version = session_id.partition(":")
    try:
        user = accounts.session_user(int(user_id), int(version))
    except ValueError:  # a cookie of another shape (made before session versions) is no login
        return None
    return SessionUser.from_row(user) if user is not None else None


def can(action: str) -> bool:
    """True when the current user's role allows `action` (for templates and views)."""
    return bool(current_user.is_authenticated and current_user.can(action))


def require(action: str):
    """View decorator: 403 unless the current user's role allows `action`."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not can(action):
                abort(403, description=f"Your role ({current_user.role.value}) may not do this.")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no open redirect through `next=`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message="Too many login attempts; wait a minute and try again.")
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("batches.index"))
    error = None
    if request.method == "POST":
        user = accounts.login(request.form.get("email", ""), request.form.get("password", ""))
        if user is None:
            error = "Wrong e-mail or password."
        else:
            login_user(SessionUser.from_row(user))
            return redirect(safe_next(request.args.get("next")) or url_for("batches.index"))
    status = 401 if error else 200
    return render_template("login.html", error=error, email=request.form.get("email", "")), status


@bp.post("/logout")
@login_required
def logout():
    accounts.end_sessions()  # a copy of this cookie is no login either
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


def _account_page(**shown):  # noqa: ANN003, ANN202
    """The account page, never stored by a browser or proxy: it may show a new token's plaintext."""
    response = make_response(render_template("account.html", tokens=accounts.tokens(), **shown))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account")
def account():
    return _account_page(new_token=None)


@bp.post("/account/tokens")
def create_token():
    try:
        token, plaintext = accounts.create_token(request.form.get("name", ""))
    except InvalidInput as exc:
        flash(str(exc), "error")
        return redirect(url_for("auth.account"))
    # Shown once, in this response only: never put into the session cookie or a flash message.
    return _account_page(new_token=plaintext, new_token_name=token.name)


@bp.post("/account/tokens/<id:token_id>/revoke")
def revoke_token(token_id: int):
    if not accounts.revoke_token(token_id):
        abort(404)
    flash("Token revoked.", "success")
    return redirect(url_for("auth.account"))


# --- the studio's users (admins) ---------------------------------------------------------------

@bp.get("/account/users")
@require("admin")
def users():
    return render_template("users.html", users=accounts.users(), roles=[r.value for r in Role], error=None, form={})


@bp.post("/account/users")
@require("admin")
def create_user():
    form = request.form
    try:
        user = accounts.create_user(form.get("email", ""), form.get("password", ""), form.get("role", ""))
    except InvalidInput as exc:
        rollback()
        return render_template("users.html", users=accounts.users(), roles=[r.value for r in Role], error=str(exc),
                               form=form), 400
    flash(f"{user.email} can now log in as {user.role.value}.", "success")
    return redirect(url_for("auth.users"))


@bp.post("/account/users/<id:user_id>/active")
@require("admin")
def set_active(user_id: int):
    active = request.form.get("active") == "1"
    if user_id == current_user.id and not active:
        flash("You cannot disable your own account.", "error")
        return redirect(url_for("auth.users"))
    user = accounts.set_active(user_id, active)  # another studio's user: NotFound, a 404
    flash(f"{user.email} is {'enabled' if active else 'disabled'}.", "success")
    return redirect(url_for("auth.users"))
