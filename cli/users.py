"""`panelpaint user create|token|password`: accounts, API tokens and passwords from the command line."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

ROLES = ("admin", "artist", "reviewer")


@contextlib.contextmanager
def _session() -> Iterator:
    from panelpaint.settings import SettingsError, load_settings
    from migrations import runner as migrate
    from panelpaint.store.db import Store
    from panelpaint.store.errors import StoreError

    try:
        url = load_settings().database_url
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if not migrate.is_up_to_date(url):
        raise click.ClickException("the database is not up to date: run `panelpaint db upgrade` first")
    store = Store(url)
    try:
        with store.session() as session:
            yield session
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()


@click.group()
def user() -> None:
    """Manage user accounts and API tokens."""


@user.command()
@click.option("--email", required=True)
@click.option("--studio", required=True, help="Studio name; created when it does not exist yet.")
@click.option("--role", type=click.Choice(ROLES), default="artist", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Prompted for when not given (keeps it out of the shell history).")
def create(email: str, studio: str, role: str, password: str) -> None:
    """Create a user of a studio."""
    from panelpaint.store import accounts

    with _session() as session:
        found = accounts.get_studio_by_name(session, studio) or accounts.create_studio(session, studio)
        made = accounts.create_user(session, found.id, email, password, role)
        click.echo(f"created {role} {made.email} (id {made.id}) in studio {found.name!r}")


@user.command()
@click.option("--email", required=True)
@click.option("--name", required=True, help="What the token is for, e.g. 'pipeline'.")
def token(email: str, name: str) -> None:
    """Create an API token for a user and print it (it is shown only this once)."""
    from panelpaint.store import accounts

    with _session() as session:
        found = accounts.get_user_by_email(session, email)
        if found is None:
            raise click.ClickException(f"no user with e-mail {email}")
        _, plaintext = accounts.create_api_token(session, found.id, name)
    click.echo(plaintext)


@user.command()
@click.option("--email", required=True)
@click.option("--password", prompt="New password", hide_input=True, confirmation_prompt=True,
              help="Prompted for when not given (keeps it out of the shell history).")
def password(email: str, password: str) -> None:
    """Set a user's password (a forgotten one, or a first one chosen for them)."""
    from panelpaint.store import accounts

    with _session() as session:
        found = accounts.get_user_by_email(session, email)
        if found is None:
            raise click.ClickException(f"no user with e-mail {email}")
        accounts.set_password(session, found.id, password)
    click.echo(f"password of {found.email} changed")
