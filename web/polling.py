"""Status answers that clients poll (the API's batch and batch list, the dashboard's live progress):
JSON with a strong ETag, and 304 Not Modified with no body when the client's copy is current.

A batch's status is tagged before it is built: the tag hashes everything the answer is made of
(`batches.status_inputs`), so an unchanged batch costs a few small queries and no JSON. Other
answers are tagged with the hash of their body (Werkzeug's `add_etag`). Either way an answer is
built at most once per `Settings.status_max_age` for all the polls of one user and URL
(`shared_status`, `web.status_cache`)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, jsonify, request
from flask_login import current_user

import panelpaint

from .services import READ_METHODS
from .status_cache import Cached, StatusCache
from .token_cache import TOKEN_CACHE, TokenCache

STATUS_CACHE = "panelpaint.status_cache"  # the app's `StatusCache` (absent: every poll builds its answer)

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


def shared_status(answer: Callable[[], Response]) -> Response:
    """`answer()` (a `status_response`), or the answer an earlier poll of this user and URL built
    within `Settings.status_max_age` and before the studio's last change."""
    cache: StatusCache | None = current_app.extensions.get(STATUS_CACHE)
    if cache is None or not current_user.is_authenticated:
        return answer()
    url = request.script_root + request.full_path
    hit, generation = cache.get(current_user.studio_id, current_user.id, url)
    if hit is not None and (hit.body is not None or hit.tag in request.if_none_match):
        return _answer(hit)
    response = answer()
    tag, _weak = response.get_etag()
    if tag and response.status_code in (200, 304):
        body = response.get_data() if response.status_code == 200 else None
        cache.put(current_user.studio_id, current_user.id, url, generation, Cached(tag, body))
    return response


def _answer(cached: Cached) -> Response:
    response = Response(status=304) if cached.tag in request.if_none_match else \
        Response(cached.body, mimetype="application/json")
    response.set_etag(cached.tag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def studio_changed(response: Response) -> Response:
    """After a request that changed something (any method but a read, answered below 400), its
    studio's shared status answers are stale (`StatusCache.changed`), and this process checks every
    API token again (`TokenCache.clear`: the change may have revoked one or disabled its user)."""
    if request.method in READ_METHODS or response.status_code >= 400:
        return response
    tokens: TokenCache | None = current_app.extensions.get(TOKEN_CACHE)
    if tokens is not None:
        tokens.clear()
    cache: StatusCache | None = current_app.extensions.get(STATUS_CACHE)
    if cache is not None and current_user.is_authenticated:
        cache.changed(current_user.studio_id)
    return response
