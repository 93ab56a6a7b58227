"""`panelpaint db upgrade|downgrade|current`: run the job store's migrations on DATABASE_URL."""
from __future__ import annotations

import click


def _url() -> str:
    from panelpaint.settings import SettingsError, load_settings

    try:
        return load_settings().database_url
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def db() -> None:
    """Create or update the job store's database (DATABASE_URL)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply migrations (creates the tables on a new database)."""
    from migrations import runner as migrate

    url = _url()
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current(url)}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Undo migrations down to REVISION ("base" drops every table)."""
    from migrations import runner as migrate

    url = _url()
    migrate.downgrade(url, revision)
    click.echo(f"database at revision {migrate.current(url) or 'base'}")


@db.command()
def current() -> None:
    """Print the applied revision and whether it is the newest."""
    from migrations import runner as migrate

    url = _url()
    rev, head = migrate.current(url), migrate.head()
    click.echo(f"{rev or 'base'} ({'up to date' if rev == head else f'newest is {head}: run panelpaint db upgrade'})")
