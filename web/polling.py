"""Status answers that clients poll (the API's batch and batch list, the dashboard's live progress):
JSON with a strong ETag, and 304 Not Modified with no body when the client's copy is current.

A batch's status is tagged before it is built: the tag hashes everything the answer is made of
(`batches.status_inputs`), so an unchanged batch costs a few small queries and no JSON. Other
answers are tagged with the hash of their body (Werkzeug's `add_etag`)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request

import panelpaint

# Revalidate on every poll (a poll never shows a stale copy), and keep it out of shared caches.
CACHE_CONTROL = "private, no-cache"


def inputs_tag(*inputs: Any) -> str:
    """An ETag for an answer made from `inputs` (their repr), by this version of the code at this
    mount point (the body's format and its URLs depend on both)."""
    text = repr((panelpaint.__version__, request.script_root, request.path, inputs))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def status_response(build: Callable[[], Any], tag: str | None = None) -> Response:
    """The JSON of `build()`, or 304 with no body when the request's If-None-Match holds the tag.
    With `tag` (`inputs_tag`) the answer is not built for a 304; without, the body's hash is the tag."""
    if tag is not None and tag in request.if_none_match:
        response = Response(status=304)
    else:
        response = jsonify(build())
        if tag is None:
            response.add_etag()
    if tag is not None:
        response.set_etag(tag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response.make_conditional(request) if tag is None else response
