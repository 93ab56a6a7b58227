"""Error responses: JSON for the REST API, a friendly page for the dashboard."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

FRIENDLY = {
    400: "The request could not be understood.",
    401: "You need to log in to see this.",
    403: "Your role does not allow this.",
    404: "There is nothing here. It may belong to another studio, or it was never made.",
    413: "The upload is too large. Split it into smaller batches or archives and try again.",
    429: "Too many attempts. Wait a minute and try again.",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(code: int, name: str, message: str):
    if wants_json():
        return jsonify(error=name.lower().replace(" ", "_"), message=message, status=code), code
    return render_template("error.html", code=code, name=name, message=message), code


def register(app: Flask) -> None:
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
        response = error_response(code, exc.name, message)
        if code == 429 or code == 405:
            body, status = response
            resp = app.make_response((body, status))
            for header, value in exc.get_headers():
                if header.lower() in ("retry-after", "allow"):
                    resp.headers[header] = value
            return resp
        return response

    @app.errorhandler(InternalServerError)
    def _internal(exc: InternalServerError):
        app.logger.exception("unhandled error", exc_info=exc.original_exception)
        return error_response(500, "Server error", "Something went wrong on our side; it has been logged.")
