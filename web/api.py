"""The REST API: JSON mirroring the dashboard, authenticated by `Authorization: Bearer <token>`.

Tokens are made on the account page (or by `panelpaint` commands) and checked by the job store;
the session cookie is never read here, which is why the blueprint is exempt from CSRF. The
OpenAPI 3 document describing it is served at /api/openapi.json (see `web/openapi.py`).
"""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, request, send_file, url_for
from flask_login import current_user

from panelpaint.images import ImageError
from panelpaint.store import accounts
from panelpaint.store import batches as batch_store
from panelpaint.store import styles as style_store
from panelpaint.store import variants as variant_store
from panelpaint.store.batches import panel_of
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.schema import RunStatus

from . import downloads, jobs
from .auth import SessionUser, require
from .batches import page_image_key, serve_image
from .errors import error_response
from .extensions import login_manager
from .review import ReviewError, comments, decide, parse_hints
from .services import db, send_stored
from .styles import add_style, edit_colour_key, extract_colour_key, parse_tags

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def authenticate():
    """Resolve the bearer token to the request's user; 401 for a missing, unknown or revoked token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    user = accounts.user_for_token(db(), token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        if request.endpoint == "api.openapi" and current_user.is_authenticated:
            return None  # the document may also be read from a logged-in browser (GET only)
        response, code = error_response(401, "Unauthorized", "Send a valid API token: Authorization: Bearer <token>.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="panelpaint"'
        return response, code
    db().commit()  # records the token's last use
    # For this request only: nothing is written to the session (flask-login's own per-request hook).
    login_manager._update_request_context_with_user(SessionUser.from_row(user))
    return None


def body():
    """The request's fields: a JSON object, or the form of a multipart request."""
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else request.form


def optional_int(data, name: str) -> int | None:  # noqa: ANN001 - the request's fields
    """An optional integer field (absent or "" is None); ValueError naming the field otherwise."""
    value = data.get(name)
    if value in (None, ""):
        return None
    try:
        if isinstance(value, (bool, float)):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer") from None


def bad_request(message: str):
    return error_response(400, "Bad request", message)


def owned(getter, row_id: int):
    row = getter(db(), current_user.studio_id, row_id)
    if row is None:
        abort(404)
    return row


# What PATCH /v1/styles/<id> may change: the colour key.
STYLE_FIELDS = frozenset({"palette", "snap_palette", "background"})


def style_json(style) -> dict:
    return {"id": style.id, "name": style.name, "tags": style.tags or [], "width": style.width,
            "height": style.height, "created_at": style.created_at.isoformat(),
            "image_url": url_for("api.style_image", style_id=style.id),
            "palette": style.palette, "snap_palette": style.snap_palette, "background": style.background.value}


def render_json(render) -> dict:
    return {
        "id": render.id, "page_id": render.page_id, "panel_id": render.panel_id, "version": render.version,
        "status": render.status.value, "style_id": render.style_id, "seed": render.seed,
        "hints": render.hints or [], "model_version": render.model_version, "attempt": render.attempt,
        "error": render.error, "degraded": render.degraded, "worker": render.worker,
        "timings": render.timings or {}, "variant_set_id": render.variant_set_id,
        "queued_at": render.queued_at.isoformat() if render.queued_at else None,
        "finished_at": render.finished_at.isoformat() if render.finished_at else None,
        "files": {kind: url_for("api.render_file", render_id=render.id, kind=kind)
                  for kind in (render.outputs or {}) if render.status == RunStatus.succeeded},
    }


def variant_set_json(vset) -> dict:
    return {"id": vset.id, "page_id": vset.page_id, "size": vset.size, "style_id": vset.style_id,
            "created_at": vset.created_at.isoformat(), "picked_render_id": vset.picked_render_id,
            "picked_at": vset.picked_at.isoformat() if vset.picked_at else None,
            "renders": [render_json(r) for r in vset.renders]}


def page_json(page, *, detail: bool = False) -> dict:
    data = jobs.page_status(page, api=True)
    data["result_url"] = url_for("api.page_image", page_id=page.id, kind="result") \
        if jobs.result_key(jobs.current_render(page)) else None
    data["downloads"] = {fmt: url_for("api.page_download", page_id=page.id, fmt=fmt)
                         for fmt in downloads.available_page_files(page)}
    if detail:
        data["panels"] = [{"id": p.id, **panel_of(p).geometry(), "review_status": p.review_status.value,
                           "style_id": p.style_id, "hints": p.hints or []} for p in page.panels]
        data["comments"] = [{**c, "at": c["at"].isoformat()} for c in comments(page)]
    return data


def submitted_json(result: jobs.Submitted) -> dict:
    data = jobs.batch_status(result.batch, api=True)
    data["pages"] = [page_json(p) for p in result.batch.pages]
    data["added"] = [p.id for p in result.pages]
    data["rejected"] = [{"page_id": p.id, "name": p.source_name, "error": p.error} for p in result.failed]
    data["warning"] = result.warning
    return data


# --- account and styles ------------------------------------------------------------------------

@bp.get("/v1/me")
def me():
    return jsonify(id=current_user.id, email=current_user.email, role=current_user.role.value,
                   studio_id=current_user.studio_id, studio=current_user.studio_name)


@bp.get("/v1/styles")
def list_styles():
    styles = style_store.list_styles(db(), current_user.studio_id, tag=request.args.get("tag") or None)
    return jsonify(styles=[style_json(s) for s in styles])


@bp.post("/v1/styles")
@require("submit")
def create_style():
    try:
        style = add_style(request.form.get("name", ""), parse_tags(request.form.get("tags")), request.files.get("image"))
    except (ImageError, InvalidInput) as exc:
        db().rollback()
        return bad_request(str(exc))
    db().commit()
    return jsonify(style_json(style)), 201


@bp.get("/v1/styles/<int:style_id>")
def get_style(style_id: int):
    return jsonify(style_json(owned(style_store.get_style, style_id)))


@bp.patch("/v1/styles/<int:style_id>")
@require("submit")
def edit_style(style_id: int):
    style = owned(style_store.get_style, style_id)
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not data:
        return bad_request("Send a JSON object with palette, snap_palette and/or background.")
    unknown = sorted(set(data) - STYLE_FIELDS)
    if unknown:
        return bad_request(f"Unknown field(s) {', '.join(unknown)}: a style's palette, snap_palette and "
                           "background can be changed.")
    try:
        edit_colour_key(style, **data)
    except InvalidInput as exc:
        db().rollback()
        return bad_request(str(exc))
    return jsonify(style_json(style))


@bp.post("/v1/styles/<int:style_id>/palette/extract")
@require("submit")
def extract_style_palette(style_id: int):
    style = owned(style_store.get_style, style_id)
    data = request.get_json(silent=True) or {}
    if not isinstance(data, dict):
        return bad_request("Send a JSON object (optionally with k, the number of colours).")
    try:
        extract_colour_key(style, data.get("k", style_store.PALETTE_COLOURS))
    except (InvalidInput, ImageError) as exc:
        db().rollback()
        return bad_request(str(exc))
    return jsonify(style_json(style))


@bp.get("/v1/styles/<int:style_id>/image")
def style_image(style_id: int):
    return send_stored(owned(style_store.get_style, style_id).image_key)


# --- batches -----------------------------------------------------------------------------------

@bp.get("/v1/batches")
def list_batches():
    rows = batch_store.list_batches(db(), current_user.studio_id, limit=request.args.get("limit", 100, type=int),
                                    offset=request.args.get("offset", 0, type=int))
    return jsonify(batches=[jobs.batch_status(b, with_pages=False, api=True) for b in rows])


@bp.post("/v1/batches")
@require("submit")
def create_batch():
    form = request.form
    try:
        if request.files.get("style_image") and request.files["style_image"].filename:
            style_id = add_style(form.get("style_name") or "Uploaded style", parse_tags(form.get("style_tags")),
                                 request.files["style_image"]).id
        else:
            style_id = form.get("style_id", type=int)
        result = jobs.create_batch(form.get("name", ""), style_id, jobs.parse_direction(form.get("direction")),
                                   jobs.parse_options(form), request.files.getlist("pages"))
    except (jobs.SubmitError, ImageError, InvalidInput) as exc:
        db().rollback()
        return bad_request(str(exc))
    return jsonify(submitted_json(result)), 201


@bp.get("/v1/batches/<int:batch_id>")
def get_batch(batch_id: int):
    batch = owned(batch_store.get_batch, batch_id)
    data = jobs.batch_status(batch, api=True)
    data["pages"] = [page_json(p) for p in batch.pages]
    return jsonify(data)


@bp.post("/v1/batches/<int:batch_id>/pages")
@require("submit")
def add_pages(batch_id: int):
    batch = owned(batch_store.get_batch, batch_id)
    try:
        result = jobs.add_pages(batch, request.files.getlist("pages"))
    except jobs.SubmitError as exc:
        db().rollback()
        return bad_request(str(exc))
    return jsonify(submitted_json(result)), 201


@bp.post("/v1/batches/<int:batch_id>/cancel")
@require("submit")
def cancel_batch(batch_id: int):
    batch = owned(batch_store.get_batch, batch_id)
    dropped = jobs.cancel(batch)
    return jsonify({**jobs.batch_status(batch, with_pages=False, api=True), "renders_cancelled": dropped})


@bp.get("/v1/batches/<int:batch_id>/download")
def download_batch(batch_id: int):
    batch = owned(batch_store.get_batch, batch_id)
    fmt = request.args.get("format", "zip")
    if fmt not in downloads.ARCHIVE_FORMATS:
        return bad_request("format must be zip or cbz")
    archive = downloads.batch_archive(batch, fmt, approved_only=request.args.get("scope", "approved") != "all")
    if archive is None:
        return error_response(409, "Conflict", "No pages to download: none is finished and approved "
                                               "(use scope=all for every finished page).")
    return send_file(archive, mimetype=downloads.ARCHIVE_FORMATS[fmt], as_attachment=True,
                     download_name=downloads.archive_name(batch, fmt))


# --- pages and renders -------------------------------------------------------------------------

@bp.get("/v1/pages/<int:page_id>")
def get_page(page_id: int):
    return jsonify(page_json(owned(batch_store.get_page, page_id), detail=True))


@bp.post("/v1/pages/<int:page_id>/retry")
@require("submit")
def retry_page(page_id: int):
    page = owned(batch_store.get_page, page_id)
    try:
        jobs.retry(page)
    except jobs.SubmitError as exc:
        db().rollback()
        return error_response(409, "Conflict", str(exc))
    return jsonify(page_json(page)), 202


@bp.post("/v1/pages/<int:page_id>/review")
@require("review")
def review_page(page_id: int):
    page = owned(batch_store.get_page, page_id)
    data = body()
    try:
        panel_id = optional_int(data, "panel_id")
    except ValueError as exc:
        return bad_request(str(exc))
    try:
        decide(page, panel_id, str(data.get("decision", "")), str(data.get("comment", "")))
    except NotFound:
        abort(404)
    except ReviewError as exc:
        db().rollback()
        return error_response(409, "Conflict", str(exc))
    return jsonify(page_json(page, detail=True))


@bp.post("/v1/pages/<int:page_id>/rerender")
@require("rerender")
def rerender_page(page_id: int):
    page = owned(batch_store.get_page, page_id)
    data = body()
    try:
        panel_id, style_id = optional_int(data, "panel_id"), optional_int(data, "style_id")
    except ValueError as exc:
        return bad_request(str(exc))
    if panel_id is not None and panel_id not in {p.id for p in page.panels}:
        abort(404)
    try:
        render = jobs.rerender(page, panel_id, style_id, jobs.parse_seed(data.get("seed")), parse_hints(data.get("hints")))
    except jobs.SubmitError as exc:
        return refused(exc)
    return jsonify(render_json(render)), 202


@bp.post("/v1/pages/<int:page_id>/variants")
@require("rerender")
def make_variants(page_id: int):
    page = owned(batch_store.get_page, page_id)
    data = body()
    try:
        vset = jobs.variants(page, jobs.parse_count(data.get("count")), optional_int(data, "style_id"),
                             parse_hints(data.get("hints")))
    except ValueError as exc:
        return bad_request(str(exc))
    except jobs.SubmitError as exc:
        return refused(exc)
    return jsonify(variant_set_json(vset)), 202


@bp.get("/v1/pages/<int:page_id>/variants")
def page_variants(page_id: int):
    page = owned(batch_store.get_page, page_id)
    sets = variant_store.list_variant_sets(db(), current_user.studio_id, page.id)
    return jsonify(variant_sets=[variant_set_json(v) for v in sets])


@bp.post("/v1/renders/<int:render_id>/pick")
@require("rerender")
def pick_render(render_id: int):
    try:
        render = jobs.pick(render_id)
    except NotFound:
        abort(404)
    except jobs.SubmitError as exc:
        return refused(exc)
    return jsonify(page_json(owned(batch_store.get_page, render.page_id), detail=True))


def refused(exc: jobs.SubmitError):
    """A submission the job store refused: 409 when the state forbids it now, else 400."""
    db().rollback()
    if isinstance(exc, jobs.Conflict):
        return error_response(409, "Conflict", str(exc))
    return bad_request(str(exc))


@bp.get("/v1/pages/<int:page_id>/renders")
def page_renders(page_id: int):
    page = owned(batch_store.get_page, page_id)
    return jsonify(renders=[render_json(r) for r in batch_store.list_renders(db(), current_user.studio_id, page.id)])


@bp.get("/v1/pages/<int:page_id>/image/<kind>")
def page_image(page_id: int, kind: str):
    page = owned(batch_store.get_page, page_id)
    return serve_image(page_image_key(page, kind), request.args.get("size", type=int), revalidate=kind != "source")


@bp.get("/v1/pages/<int:page_id>/download/<fmt>")
def page_download(page_id: int, fmt: str):
    page = owned(batch_store.get_page, page_id)
    key = downloads.page_file(page, fmt)
    if key is None:
        abort(404)
    return send_stored(key, download_name=downloads.page_file_name(page, fmt), revalidate=True)


@bp.get("/v1/renders/<int:render_id>")
def get_render(render_id: int):
    return jsonify(render_json(owned(batch_store.get_render, render_id)))


@bp.get("/v1/renders/<int:render_id>/files/<kind>")
def render_file(render_id: int, kind: str):
    render = owned(batch_store.get_render, render_id)
    if render.status != RunStatus.succeeded:
        abort(404)
    return serve_image((render.outputs or {}).get(kind), request.args.get("size", type=int))


@bp.get("/openapi.json")
def openapi():
    from .openapi import document

    return jsonify(document(request.host_url.rstrip("/")))
