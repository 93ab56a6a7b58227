"""What every view shares: the settings, job store and file storage of the current app, and one
database session per request (flaskr's `get_db`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app, g

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


def db() -> "Session":
    """This request's session; views commit it themselves, teardown rolls back whatever was not."""
    if "db" not in g:
        g.db = services().store.sessions()
    return g.db


def release_db() -> None:
    """End this request's transaction before slow work that needs no database (decoding, zipping);
    on SQLite an open transaction holds the write lock the workers need. Rows loaded so far stay usable
    as plain values, and the next `db()` call starts a new transaction."""
    session = g.get("db")
    if session is not None:
        session.commit()


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def send_stored(key: str, download_name: str | None = None, *, revalidate: bool = False):
    """Serve a stored file by its server-made key; callers have already checked the studio owns the row.

    Keys are content hashes, so a URL that always names the same key may be cached for an hour;
    one whose file changes (a page's result: a re-render or a picked variant makes another) is
    served with `revalidate`, so a browser asks again every time and gets a 304 while it is the same.
    """
    from flask import abort, send_file

    from panelpaint.formats import MEDIA_TYPES
    from panelpaint.store.errors import InvalidInput, NotFound

    release_db()
    suffix = "." + key.rsplit(".", 1)[1] if "." in key else ""
    mimetype = MEDIA_TYPES.get(suffix, "application/octet-stream")
    storage = services().storage
    try:
        path = storage.local_path(key)
        source = path if path is not None else storage.open(key)
    except (InvalidInput, NotFound):
        abort(404)
    response = send_file(source, mimetype=mimetype, as_attachment=download_name is not None,
                         download_name=download_name, max_age=3600, conditional=True, etag=key)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return cache_privately(response, revalidate)


def cache_privately(response, revalidate: bool = False):  # noqa: ANN001, ANN201 - a Flask response
    """Private caching for a response (see `send_stored`); with `revalidate`, only after asking again."""
    response.cache_control.private = True
    if revalidate:
        response.cache_control.max_age = None
        response.cache_control.no_cache = True
    return response
