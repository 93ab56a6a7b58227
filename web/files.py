"""Serving stored files to browsers and API clients: whole, or their thumbnails (made by the
workers, so the web never decodes a page), privately cached;
a page's images and downloads and a render's files answer the same under the dashboard and /api/."""
from __future__ import annotations

from flask import abort, request, send_file

from panelpaint.formats import MEDIA_TYPES
from panelpaint.limits import THUMB_SIZES
from panelpaint.store.errors import InvalidInput, NotFound

from .services import batches, downloads, release_db, services
from .services.fields import optional_int


def send_stored(key: str, download_name: str | None = None, *, revalidate: bool = False):  # noqa: ANN201
    """Serve a stored file by its server-made key; callers have already checked the studio owns the row.

    Keys are content hashes, so a URL that always names the same key may be cached for an hour;
    one whose file changes (a page's result: a re-render or a picked variant makes another) is
    served with `revalidate`, so a browser asks again every time and gets a 304 while it is the same.
    """
    release_db()
    suffix = "." + key.rsplit(".", 1)[1] if "." in key else ""
    storage = services().storage
    try:
        path = storage.local_path(key)
        source = path if path is not None else storage.open(key)
    except (InvalidInput, NotFound):
        abort(404)
    response = send_file(source, mimetype=MEDIA_TYPES.get(suffix, "application/octet-stream"),
                         as_attachment=download_name is not None, download_name=download_name, max_age=3600,
                         conditional=True, etag=key)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return cache_privately(response, revalidate)


def page_image(page_id: int, kind: str):  # noqa: ANN201
    """A page's source line art, its result, or a file of its current render (`?size=` a thumbnail)."""
    page = batches.get_page(page_id)
    size = thumbnail_size()
    key = batches.page_image_key(page, kind) if size is None else batches.page_thumbnail_key(page, kind, size)
    return serve_image(key, revalidate=kind != "source")


def render_file(render_id: int, kind: str):  # noqa: ANN201
    """One output of a finished render (`?size=` a thumbnail of its coloured page)."""
    render = batches.get_render(render_id)
    size = thumbnail_size()
    key = batches.render_file_key(render, kind) if size is None else batches.render_thumbnail_key(render, kind, size)
    return serve_image(key)


def page_download(page_id: int, fmt: str):  # noqa: ANN201
    """One page's deliverable, as an attachment."""
    found = downloads.page_file(batches.get_page(page_id), fmt)
    return send_stored(found.key, download_name=found.name, revalidate=True)


def send_archive(archive) -> object:  # noqa: ANN001 - web.services.downloads.Archive
    """A batch's ZIP/CBZ as an attachment (its open file goes with the response)."""
    return cache_privately(send_file(archive.file, mimetype=archive.media_type, as_attachment=True,
                                     download_name=archive.name), revalidate=True)


def thumbnail_size() -> int | None:
    """The `?size=` of a thumbnail request: None (the whole file), or one of THUMB_SIZES (else 404)."""
    size = optional_int(request.args, "size")
    if size is not None and size not in THUMB_SIZES:
        abort(404)
    return size


def serve_image(key: str | None, *, revalidate: bool = False):  # noqa: ANN201
    """A stored image or thumbnail (404 while there is none); `revalidate` for a URL whose image
    changes (see `send_stored`). Thumbnails are made by the workers: nothing here decodes a page."""
    if key is None:
        abort(404)
    return send_stored(key, revalidate=revalidate)


def cache_privately(response, revalidate: bool = False):  # noqa: ANN001, ANN201 - a Flask response
    """Private caching for a response (see `send_stored`); with `revalidate`, only after asking again.
    `send_file` marks a response with a max age public: a studio's files are not, so no shared cache
    (a proxy, a CDN) may keep them."""
    response.cache_control.public = False
    response.cache_control.private = True
    if revalidate:
        response.cache_control.max_age = None
        response.cache_control.no_cache = True
    return response
