"""Sessions end on the server: a copied session cookie is no login after its user logs out, is
disabled or gets a new password (the user's session version moves on)."""
from __future__ import annotations

from web_helpers import Client, email


def stolen_copy(app, victim: Client) -> Client:  # noqa: ANN001
    """Another browser holding a copy of `victim`'s session cookie."""
    cookie = victim.get_cookie("session")
    thief = Client(app.test_client())
    thief.set_cookie("session", cookie.value)
    return thief


def logged_in(client: Client) -> bool:
    return client.get("/account").status_code == 200


def test_logout_ends_every_copy_of_the_session_cookie(app, login_as):  # noqa: ANN001
    artist = login_as("alpha", "artist")
    thief = stolen_copy(app, artist)
    assert logged_in(thief)
    assert artist.post_form("/logout").status_code == 302
    assert not logged_in(thief)
    assert thief.get("/account").location.startswith("/login")
    again = login_as("alpha", "artist")  # logging in again makes a session of the new version
    assert logged_in(again)


def test_disabling_a_user_ends_their_sessions(app, login_as, admin):  # noqa: ANN001
    from panelpaint.store import accounts

    artist = login_as("alpha", "artist")
    with app.extensions["panelpaint"].store.session() as s:
        artist_id = accounts.get_user_by_email(s, email("alpha", "artist")).id
    admin.post_form(f"/account/users/{artist_id}/active", {"active": "0"})
    assert not logged_in(artist)
    admin.post_form(f"/account/users/{artist_id}/active", {"active": "1"})
    assert not logged_in(artist)  # enabled again, the old cookie still names an ended session


def test_a_new_password_ends_the_users_sessions_but_not_others(app, login_as):  # noqa: ANN001
    from panelpaint.store import accounts

    artist, reviewer = login_as("alpha", "artist"), login_as("alpha", "reviewer")
    with app.extensions["panelpaint"].store.session() as s:
        accounts.set_password(s, accounts.get_user_by_email(s, email("alpha", "artist")).id, "another-password")
    assert not logged_in(artist)
    assert logged_in(reviewer)
