"""Studios, users, password hashing and API tokens."""
from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from panelpaint.store import accounts
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.schema import ApiToken, Role, User


def test_password_is_hashed_with_scrypt_by_default(monkeypatch):
    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "scrypt")
    hashed = accounts.hash_password("correct horse")
    assert hashed.startswith("scrypt:") and "correct horse" not in hashed
    with pytest.raises(InvalidInput, match="at least 8"):
        accounts.hash_password("short")


def test_create_user_and_authenticate(store):
    with store.session() as s:
        studio = accounts.create_studio(s, "Ink")
        user = accounts.create_user(s, studio.id, "  Ann@Example.ORG ", "password-1", "reviewer")
        assert (user.email, user.role) == ("ann@example.org", Role.reviewer)
        assert user.password_hash != "password-1"
    with store.session() as s:
        assert accounts.authenticate(s, "ANN@example.org", "password-1").id == user.id
        assert accounts.authenticate(s, "ann@example.org", "wrong-password") is None
        assert accounts.authenticate(s, "nobody@example.org", "password-1") is None
        s.get(User, user.id).is_active = False
    with store.session() as s:
        assert accounts.authenticate(s, "ann@example.org", "password-1") is None
        accounts.set_password(s, user.id, "new-password")
        s.get(User, user.id).is_active = True
    with store.session() as s:
        assert accounts.authenticate(s, "ann@example.org", "new-password") is not None


def test_bad_user_input_is_refused(store):
    with store.session() as s:
        studio = accounts.create_studio(s, "Ink")
        accounts.create_user(s, studio.id, "a@example.org", "password-1")
        with pytest.raises(InvalidInput, match="already exists"):
            accounts.create_user(s, studio.id, "A@example.org", "password-1")
        with pytest.raises(InvalidInput, match="e-mail"):
            accounts.create_user(s, studio.id, "not-an-email", "password-1")
        with pytest.raises(InvalidInput, match="role"):
            accounts.create_user(s, studio.id, "b@example.org", "password-1", "owner")
        with pytest.raises(NotFound):
            accounts.create_user(s, 9999, "c@example.org", "password-1")
        with pytest.raises(InvalidInput, match="already exists"):
            accounts.create_studio(s, "Ink")
        with pytest.raises(InvalidInput):
            accounts.create_studio(s, "  ")


def test_api_tokens_are_stored_hashed_and_revocable(store):
    with store.session() as s:
        studio = accounts.create_studio(s, "Ink")
        user = accounts.create_user(s, studio.id, "a@example.org", "password-1")
        token, plaintext = accounts.create_api_token(s, user.id, "pipeline")
        assert plaintext.startswith("pp_") and len(plaintext) > 40
    with store.session() as s:
        row = s.get(ApiToken, token.id)
        assert row.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        stored = s.execute(sa.text("SELECT * FROM api_token")).mappings().one()
        assert plaintext not in {str(v) for v in stored.values()}
        assert accounts.user_for_token(s, plaintext).id == user.id
        assert s.get(ApiToken, token.id).last_used_at is not None
        assert accounts.user_for_token(s, plaintext[:-1] + "x") is None
        assert accounts.user_for_token(s, "") is None
        assert accounts.user_for_token(s, "Bearer " + plaintext) is None
        assert [t.id for t in accounts.list_tokens(s, user.id)] == [token.id]
    with store.session() as s:
        other = accounts.create_user(s, studio.id, "b@example.org", "password-1")
        assert accounts.revoke_token(s, token.id, user_id=other.id) is False  # not theirs
        assert accounts.revoke_token(s, token.id, user_id=user.id) is True
        assert accounts.revoke_token(s, 12345) is False
    with store.session() as s:
        assert accounts.user_for_token(s, plaintext) is None
        with pytest.raises(InvalidInput):
            accounts.create_api_token(s, user.id, "")


def test_list_and_disable_users(store):
    with store.session() as s:
        ink, other = accounts.create_studio(s, "Ink"), accounts.create_studio(s, "Other")
        a = accounts.create_user(s, ink.id, "b@example.org", "password-1")
        accounts.create_user(s, ink.id, "a@example.org", "password-1")
        accounts.create_user(s, other.id, "c@example.org", "password-1")
        _, token = accounts.create_api_token(s, a.id, "t")
        assert [u.email for u in accounts.list_users(s, ink.id)] == ["a@example.org", "b@example.org"]
        with pytest.raises(NotFound):
            accounts.set_user_active(s, other.id, a.id, False)  # not that studio's user
        accounts.set_user_active(s, ink.id, a.id, False)
    with store.session() as s:
        assert accounts.authenticate(s, "b@example.org", "password-1") is None
        assert accounts.user_for_token(s, token) is None
