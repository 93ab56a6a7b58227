"""Accounts as the dashboard and the API see them: logging in, bearer tokens, and a studio's users."""
from __future__ import annotations

from dataclasses import replace

from flask import current_app, request
from flask_login import current_user

from panelpaint.store import accounts
from panelpaint.store.accounts import TokenOwner
from panelpaint.store.schema import ApiToken, User, utcnow

from ..token_cache import TOKEN_CACHE, TokenCache
from . import READ_METHODS, db, writing


def session_user(user_id: int, version: int) -> User | None:
    """Who a session cookie names: the active user with this id whose sessions of `version` have
    not been ended (logout, disabled, a new password), else None."""
    found = accounts.get_user(db(), user_id, with_studio=True)
    if found is None or not found.is_active or found.session_version != version:
        return None
    return found


def end_sessions() -> None:
    """End every session of the current user, this one and any copy of its cookie (logging out)."""
    found = accounts.get_user(db(), current_user.id)
    if found is not None:
        accounts.end_sessions(found)
        db().commit()


def login(email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None."""
    found = accounts.authenticate(db(), email, password)
    if found is not None:
        db().commit()
    return found


def user_for_token(token: str) -> TokenOwner | None:
    """The active owner of an unrevoked API token, or None. A read may take it from this process's
    `TokenCache`; a write always checks it here. Its use is recorded at most once per
    `accounts.TOKEN_TOUCH_INTERVAL`, so a client polling twice a second does not write each time."""
    cache: TokenCache | None = current_app.extensions.get(TOKEN_CACHE)
    key = accounts.hash_token(token) if cache is not None else ""
    found = cache.get(key) if cache is not None and request.method in READ_METHODS else None
    checked = found is None
    if checked:
        found = accounts.token_for(db(), token)
        if found is None:
            return None
    if accounts.touch_due(found):
        with writing() as session:
            accounts.touch_token(session, found.token_id)
        found = replace(found, last_used_at=utcnow())
        checked = True
    # Kept only when just checked: putting a cached entry back would restart its seconds, and a
    # client polling faster than they run out would keep a revoked token reading for ever.
    if cache is not None and checked:
        cache.put(key, found)
    return found


def tokens() -> list[ApiToken]:
    """The current user's tokens, newest first."""
    return accounts.list_tokens(db(), current_user.id)


def create_token(name: str) -> tuple[ApiToken, str]:
    """A new token of the current user: the row and the plaintext, shown once."""
    token, plaintext = accounts.create_api_token(db(), current_user.id, name)
    db().commit()
    return token, plaintext


def revoke_token(token_id: int) -> bool:
    """Revoke one of the current user's tokens; False when there is no such token of theirs."""
    if not accounts.revoke_token(db(), token_id, user_id=current_user.id):
        return False
    db().commit()
    return True


def users() -> list[User]:
    """The current user's studio's users."""
    return accounts.list_users(db(), current_user.studio_id)


def create_user(email: str, password: str, role: str) -> User:
    """A new user of the current user's studio; `InvalidInput` says what is wrong."""
    new = accounts.create_user(db(), current_user.studio_id, email, password, role)
    db().commit()
    return new


def set_active(user_id: int, active: bool) -> User:
    """Enable or disable a user of the studio; `NotFound` for another studio's."""
    changed = accounts.set_user_active(db(), current_user.studio_id, user_id, active)
    db().commit()
    return changed
