"""Status answers that clients poll (the API's batch and batch list, the dashboard's live progress):
JSON with a strong ETag, and 304 Not Modified with no body when the client's copy is current."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request


def status_response(data: Any) -> Response:
    """`data` as JSON, tagged with the hash of its body (Werkzeug's `add_etag`), answered 304 when it
    matches the request's If-None-Match. `no-cache` makes a browser revalidate every time, so a
    poll never shows a stale copy."""
    response = jsonify(data)
    response.add_etag()
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)
