"""The web's service layer: what the views do, one module per area (batches, review, styles,
downloads, accounts, ...), raising typed errors that `web.errors` maps to HTTP. This module holds
what they share: the current app's settings, job store and file storage, and one database
session per request (flaskr's `get_db`)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app, g, request

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from panelpaint.settings import Settings
    from panelpaint.store.db import Store
    from panelpaint.store.storage import Storage


@dataclass
class Services:
    settings: "Settings"
    store: "Store"
    _storage: "Storage | None" = field(default=None, repr=False)

    @property
    def storage(self) -> "Storage":
        if self._storage is None:
            from panelpaint.store.storage import storage_from_settings

            self._storage = storage_from_settings(self.settings)
        return self._storage

    def ping(self) -> None:
        """Raise if the database cannot answer (used by /healthz)."""
        with self.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))


def services() -> Services:
    return current_app.extensions["panelpaint"]


# Requests that only read: their session takes no write lock (on SQLite a request holding it would
# make every worker wait for the request to end) and refuses to flush a change.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def db() -> "Session":
    """This request's session; services commit it themselves, teardown rolls back whatever was not.
    A GET reads without the write lock; a service that must write during one uses `writing()`."""
    if "db" not in g:
        store = services().store
        g.db = store.read_sessions() if request.method in READ_METHODS else store.sessions()
    return g.db


@contextlib.contextmanager
def writing() -> Iterator["Session"]:
    """A transaction that may write, whatever the request's method, committed when the block ends:
    this request's own one, except in a GET, where it is a short one of its own, begun after the
    read is ended, so two of this request's transactions never hold SQLite's locks at once."""
    if request.method not in READ_METHODS:
        yield db()
        db().commit()
        return
    release_db()
    with services().store.session() as session:
        yield session


def release_db() -> None:
    """End this request's transaction before slow work that needs no database (decoding, zipping);
    on SQLite an open transaction holds the write lock the workers need. Rows loaded so far stay usable
    as plain values, and the next `db()` call starts a new transaction."""
    session = g.get("db")
    if session is not None:
        session.commit()


def commit() -> None:
    """Keep what this request changed (a view whose service leaves the commit to it)."""
    db().commit()


def rollback() -> None:
    """Forget what this request changed but did not commit: after a refused submission, before
    the form is shown again."""
    db().rollback()


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
