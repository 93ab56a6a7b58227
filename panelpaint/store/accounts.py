"""Studios, users, password hashing and API tokens.

Passwords are hashed with Werkzeug (scrypt by default). API tokens are random strings shown once;
only their SHA-256 is stored, so a database leak does not leak usable tokens. A token is looked up
by hash (a unique index), never compared by prefix.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from panelpaint.limits import EMAIL_MAX, NAME_MAX, TOKEN_NAME_MAX
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.schema import ApiToken, Role, Studio, User, utcnow

MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "pp_"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Checked against when the e-mail is unknown, so a login takes as long whether or not the user exists.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


# Werkzeug's method string; tests swap in a cheap one (scrypt takes ~0.1 s, by design).
PASSWORD_METHOD = "scrypt"


def hash_password(password: str) -> str:
    """A salted Werkzeug hash of `password`; raises `InvalidInput` when it is too short."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return generate_password_hash(password, method=PASSWORD_METHOD)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > EMAIL_MAX:
        raise InvalidInput(f"not a valid e-mail address: {email!r}")
    return email


def create_studio(session: Session, name: str) -> Studio:
    """A new studio; raises `InvalidInput` when the name is empty or already taken."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"studio name must have 1 to {NAME_MAX} characters")
    if session.scalar(sa.select(Studio.id).where(Studio.name == name)) is not None:
        raise InvalidInput(f"a studio named {name!r} already exists")
    studio = Studio(name=name)
    session.add(studio)
    session.flush()
    log_event(session, "studio.created", studio_id=studio.id, data={"name": name})
    return studio


def get_studio_by_name(session: Session, name: str) -> Studio | None:
    return session.scalar(sa.select(Studio).where(Studio.name == name.strip()))


def create_user(
    session: Session, studio_id: int, email: str, password: str, role: Role | str = Role.artist
) -> User:
    """A new active user of a studio; e-mail is stored lower-case and must be unique."""
    email = normalize_email(email)
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}, not {role!r}") from None
    if session.get(Studio, studio_id) is None:
        raise NotFound(f"studio {studio_id} does not exist")
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise InvalidInput(f"a user with e-mail {email} already exists")
    user = User(studio_id=studio_id, email=email, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    log_event(session, "user.created", studio_id=studio_id, data={"user_id": user.id, "role": role.value})
    return user


def get_user(session: Session, user_id: int, *, with_studio: bool = False) -> User | None:
    """The user; `with_studio` reads its studio in the same query (a login names both on every request)."""
    return session.get(User, user_id, options=[joinedload(User.studio)] if with_studio else None)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == (email or "").strip().lower()))


def list_users(session: Session, studio_id: int) -> list[User]:
    """A studio's users by e-mail."""
    return list(session.scalars(sa.select(User).where(User.studio_id == studio_id).order_by(User.email)))


def set_user_active(session: Session, studio_id: int, user_id: int, active: bool) -> User:
    """Enable or disable a user of the studio (a disabled user can neither log in nor use tokens)."""
    user = session.get(User, user_id)
    if user is None or user.studio_id != studio_id:
        raise NotFound(f"user {user_id} does not exist")
    user.is_active = bool(active)
    end_sessions(user)
    log_event(session, "user.enabled" if active else "user.disabled", studio_id=studio_id,
              data={"user_id": user.id})
    return user


def set_password(session: Session, user_id: int, password: str) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    user.password_hash = hash_password(password)
    end_sessions(user)
    log_event(session, "user.password_changed", studio_id=user.studio_id, data={"user_id": user.id})


def end_sessions(user: User) -> None:
    """End every session of `user`: each cookie names the version it was made under, and a cookie
    of an older version is no longer a login (logging out, disabling, a new password)."""
    user.session_version = (user.session_version or 0) + 1


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None (unknown, wrong password or inactive)."""
    user = get_user_by_email(session, email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.is_active:
        return None
    return user


def create_api_token(session: Session, user_id: int, name: str) -> tuple[ApiToken, str]:
    """A new API token for a user: returns the row and the plaintext, which is never stored or shown again."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    name = (name or "").strip()
    if not name or len(name) > TOKEN_NAME_MAX:
        raise InvalidInput(f"token name must have 1 to {TOKEN_NAME_MAX} characters")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(plaintext), prefix=plaintext[:10])
    session.add(token)
    session.flush()
    log_event(session, "token.created", studio_id=user.studio_id, data={"user_id": user.id, "token_id": token.id})
    return token, plaintext


# A token's last use is recorded at most this often: an API client polling twice a second would
# otherwise make every one of its reads a write.
TOKEN_TOUCH_INTERVAL = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class TokenOwner:
    """An unrevoked API token and its active owner, as plain values: what a request authenticated
    by it needs, and safe to keep between requests (the dashboard keeps them briefly)."""

    token_id: int
    last_used_at: dt.datetime | None
    user_id: int
    studio_id: int
    studio_name: str
    email: str
    role: Role
    session_version: int


def token_for(session: Session, plaintext: str) -> TokenOwner | None:
    """The unrevoked token of an active user with this plaintext, or None (one read of plain
    columns: every API request makes it, so no ORM objects are built)."""
    if not plaintext or not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    row = session.execute(
        sa.select(ApiToken.id, ApiToken.last_used_at, User.id, User.studio_id, Studio.name, User.email, User.role,
                  User.session_version)
        .join(User, ApiToken.user_id == User.id).join(Studio, User.studio_id == Studio.id)
        .where(ApiToken.token_hash == hash_token(plaintext), ApiToken.revoked_at.is_(None), User.is_active.is_(True))
    ).first()
    if row is None:
        return None
    token_id, last_used, user_id, studio_id, studio_name, email, role, version = row
    return TokenOwner(token_id, last_used, user_id, studio_id, studio_name, email, Role(role), version or 0)


def touch_due(token: ApiToken | TokenOwner) -> bool:
    """True when the token's recorded last use is older than `TOKEN_TOUCH_INTERVAL` (or missing)."""
    last = token.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=dt.timezone.utc)  # SQLite gives naive UTC
    return last is None or utcnow() - last >= TOKEN_TOUCH_INTERVAL


def touch_token(session: Session, token_id: int) -> None:
    """Record that the token was used now."""
    session.execute(sa.update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow())
                    .execution_options(synchronize_session=False))


def user_for_token(session: Session, plaintext: str, *, touch: bool = True) -> User | None:
    """The active owner of an unrevoked token, or None. `touch` records the time of use."""
    owner = token_for(session, plaintext)
    if owner is None:
        return None
    if touch:
        session.get(ApiToken, owner.token_id).last_used_at = utcnow()
    return session.get(User, owner.user_id)


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    """A user's tokens, newest first (revoked ones included, with `revoked_at` set)."""
    return list(session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    ))


def revoke_token(session: Session, token_id: int, *, user_id: int | None = None) -> bool:
    """Revoke a token (only the given user's when `user_id` is set). False when there is no such token."""
    token = session.get(ApiToken, token_id)
    if token is None or (user_id is not None and token.user_id != user_id):
        return False
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        log_event(session, "token.revoked", studio_id=token.user.studio_id,
                  data={"user_id": token.user_id, "token_id": token.id})
    return True
