"""Engines and sessions for the job store, on SQLite (default) or PostgreSQL.

`make_engine(url)` applies what each backend needs (SQLite: WAL, foreign keys, a busy timeout so
a web request and a worker can write the same file); `Store` bundles an engine with two session
factories, one for transactions that write and one for reads, and is what the web app and the
workers hold.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker


# How the services lock a row they are about to change: `SELECT ... FOR NO KEY UPDATE` on
# PostgreSQL (ignored by SQLite, whose BEGIN IMMEDIATE serialises writers). Unlike FOR UPDATE it
# lets other transactions insert rows that reference the locked one (events, renders): their
# foreign key check takes a KEY SHARE lock, and waiting for it deadlocked a claim against a cancel.
ROW_LOCK = {"key_share": True}

# The execution option that marks a read-only transaction: on SQLite it begins DEFERRED, so under
# WAL it takes no lock at all and neither waits for a writer nor makes one wait.
READ_ONLY = "panelpaint_read_only"


def _wal(cur, seconds: float = 30.0) -> None:  # noqa: ANN001 - a sqlite3 cursor
    """Put the database file in WAL mode (it stays so). Switching ignores the busy timeout and
    fails at once while another connection holds a lock (processes opening a new file together),
    so it is retried; a file already in WAL mode needs no switch."""
    import sqlite3
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_engine(url: str, **kwargs) -> sa.Engine:
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            # Let SQLAlchemy, not the driver, open transactions (BEGIN IMMEDIATE below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            _wal(cur)
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            if conn.get_execution_options().get(READ_ONLY):
                # A plain read under WAL: it sees the last commit and blocks nobody.
                conn.exec_driver_sql("BEGIN DEFERRED")
            else:
                # A writer takes the write lock at the start so two writers queue (busy timeout)
                # instead of failing mid-transaction when a deferred one tries to upgrade.
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _refuse_writes(session: Session, _context, _instances) -> None:  # noqa: ANN001
    """A read session that is asked to write is a bug: on SQLite its deferred transaction could only
    upgrade to a write by racing the writers (and fail with "database is locked" when it loses)."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a read-only session was asked to write; use Store.session() for writes")


class Store:
    """An engine and its session factories: `sessions` for transactions that write (on SQLite they
    take the write lock when they begin), `read_sessions` for reads (they take none)."""

    def __init__(self, url: str, **engine_kwargs):
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        event.listen(self.read_sessions, "before_flush", _refuse_writes)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self.sessions.begin() as s:
            yield s

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only: it takes no write lock (SQLite) and refuses to flush changes."""
        with self.read_sessions() as s:
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
