"""Errors as HTTP, in one place: which status each typed error gets, answered as JSON under /api/
and as a friendly page in the dashboard. A database that cannot be reached is a 503 with
Retry-After, logged once per outage; any other unexpected error is a 500 whose traceback Flask
logs once."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, current_app, flash, jsonify, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from panelpaint.images import ImageError
from panelpaint.store.errors import Forbidden, IllegalTransition, InvalidInput, NotFound

from .services import rollback
from .services.errors import QueueUnavailable, Refused, ServiceError

FRIENDLY = {
    400: "The request could not be understood.",
    401: "You need to log in to see this.",
    403: "Your role does not allow this.",
    404: "There is nothing here. It may belong to another studio, or it was never made.",
    413: "The upload is too large. Split it into smaller batches or archives and try again.",
    429: "Too many attempts. Wait a minute and try again.",
    503: "The service cannot reach its database just now. Wait a moment and try again.",
}
# How long a client should wait before asking again while the database is down.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class Status:
    code: int
    name: str  # the page's title; the JSON `error` is made from it ("Bad request" -> "bad_request")
    friendly: bool = False  # answer FRIENDLY[code], not the error's own message


# The first class an error is an instance of gives its status.
STATUSES: tuple[tuple[type[Exception], Status], ...] = (
    (NotFound, Status(404, "Not Found", friendly=True)),  # another studio's row looks like no row
    (Forbidden, Status(403, "Forbidden")),
    (InvalidInput, Status(400, "Bad request")),
    (ImageError, Status(400, "Bad request")),
    (IllegalTransition, Status(409, "Conflict")),  # not possible now: a render still queued...
    (Refused, Status(409, "Conflict")),
    (QueueUnavailable, Status(503, "Service unavailable")),  # saved; sent once the broker is back
)
# What a dashboard form shows in place (a flash, the form again) rather than as an error page.
USER_ERRORS = (InvalidInput, ImageError, IllegalTransition, ServiceError)


def back_with_error(exc: Exception, to: str):  # noqa: ANN201 - a redirect
    """The dashboard's answer to a refused form: forget the request's changes, say why, go back to `to`."""
    rollback()
    flash(str(exc), "error")
    return redirect(to)


def status_of(exc: Exception) -> Status | None:
    return next((status for kind, status in STATUSES if isinstance(exc, kind)), None)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(code: int, name: str, message: str, *, offline: bool = False):  # noqa: ANN201
    if wants_json():
        return jsonify(error=name.lower().replace(" ", "_"), message=message, status=code), code
    if offline:
        # The database is down: rendered without Flask's context processors, one of which
        # (Flask-Login's) would ask it who is logged in.
        page = current_app.jinja_env.get_template("error.html")
        return page.render(code=code, name=name, message=message, offline=True, request=request), code
    return render_template("error.html", code=code, name=name, message=message), code


def database_unreachable(exc: BaseException) -> bool:
    """True when a database error means the server cannot be reached (refused, dropped, shutting
    down, or no connection to be had), rather than a fault of the statement."""
    if isinstance(exc, sa.exc.TimeoutError):  # the pool had no connection to give within its timeout
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:  # a disconnect seen on a live connection
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", "")  # psycopg: None when the server never answered
    if isinstance(exc, sa.exc.OperationalError) and sqlstate is None:
        return True
    if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")):
        return True  # connection exceptions; admin or crash shutdown; cannot connect now
    return getattr(orig, "sqlite_errorname", None) == "SQLITE_CANTOPEN"


class DatabaseOutage:
    """Whether the database is down: its first failure is logged (one line, no traceback), the
    requests during the outage are not, and the first connection after it says it is over."""

    def __init__(self, logger: logging.Logger):
        self.log = logger
        self.since: float | None = None
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
        cause = getattr(exc, "orig", None) or exc
        detail = (str(cause).strip().splitlines() or [""])[0]
        self.log.warning("database unreachable (%s: %s); answering 503 until it is back", type(cause).__name__, detail)

    def answered(self, *_args: object) -> None:
        if self.since is None:
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            self.log.warning("database reachable again after %.0f s", time.monotonic() - since)


def register(app: Flask, engine: sa.Engine) -> None:
    """Install the mapping on `app`; `engine` is the job store's, watched for the end of an outage."""
    outage = DatabaseOutage(app.logger)
    sa.event.listen(engine, "checkout", outage.answered)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response(
            400, "Form expired", f"{exc.description} Reload the page and submit the form again."
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = exc.code or 500
        message = exc.description
        # Werkzeug's defaults are written for developers; replace them, keep our own descriptions.
        if code in FRIENDLY and (not message or message == type(exc).description):
            message = FRIENDLY[code]
        body, status = error_response(code, exc.name, message)
        response = app.make_response((body, status))
        for header, value in exc.get_headers():
            if header.lower() in ("retry-after", "allow"):
                response.headers[header] = value
        return response

    def _typed(exc: Exception):
        status = status_of(exc)
        message = FRIENDLY[status.code] if status.friendly else str(exc)
        return error_response(status.code, status.name, message)

    for kind, _status in STATUSES:
        app.register_error_handler(kind, _typed)

    def _database(exc: sa.exc.SQLAlchemyError):
        if not database_unreachable(exc):
            raise exc  # a fault of ours: Flask logs it once and answers 500
        outage.failed(exc)
        body, status = error_response(503, "Service unavailable", FRIENDLY[503], offline=True)
        response = app.make_response((body, status))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    app.register_error_handler(sa.exc.DBAPIError, _database)
    app.register_error_handler(sa.exc.TimeoutError, _database)

    @app.errorhandler(InternalServerError)
    def _internal(exc: InternalServerError):
        # Flask has logged the traceback already (`Flask.log_exception`): log nothing more here.
        return error_response(500, "Server error", "Something went wrong on our side; it has been logged.")
