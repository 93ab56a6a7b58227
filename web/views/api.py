"""The REST API: JSON mirroring the dashboard, authenticated by `Authorization: Bearer <token>`.

Tokens are made on the account page (or by `panelpaint` commands) and checked by the job store;
the session cookie is never read here, which is why the blueprint is exempt from CSRF. Errors are
JSON (`web.errors`); the OpenAPI 3 document is served at /api/openapi.json (`web/openapi.py`).
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for
from flask_login import current_user

from panelpaint.limits import BATCHES_LISTED_DEFAULT, BATCHES_LISTED_MAX, OFFSET_MAX, PALETTE_COLOURS
from panelpaint.store.errors import InvalidInput
from panelpaint.store.schema import RunStatus

from ..errors import error_response
from ..extensions import token_login
from ..polling import shared_status, status_response
from .. import files
from ..files import send_archive, send_stored
from ..services import accounts, batches, downloads, panels, review, styles, webhooks
from ..services.fields import (
    optional_id, parse_count, parse_flag, parse_hints, parse_seed, parse_tags, query_int,
)
from .auth import SessionUser, require

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def authenticate():
    """Resolve the bearer token to the request's user; 401 for a missing, unknown or revoked token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    user = accounts.user_for_token(token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        if request.endpoint == "api.openapi" and current_user.is_authenticated:
            return None  # the document may also be read from a logged-in browser (GET only)
        response, code = error_response(401, "Unauthorized", "Send a valid API token: Authorization: Bearer <token>.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="panelpaint"'
        return response, code
    token_login(SessionUser.from_token(user))  # for this request only: no session cookie is written
    return None


def body():  # noqa: ANN201 - a dict or the request's form
    """The request's fields: a JSON object, or the form of a multipart request."""
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else request.form


# What PATCH /v1/styles/<id> may change: the colour key.
STYLE_FIELDS = frozenset({"palette", "snap_palette", "background"})


def style_json(style) -> dict:  # noqa: ANN001
    return {"id": style.id, "name": style.name, "tags": style.tags or [], "width": style.width,
            "height": style.height, "created_at": style.created_at.isoformat(),
            "image_url": url_for("api.style_image", style_id=style.id),
            "palette": style.palette, "snap_palette": style.snap_palette, "background": style.background.value}


def render_json(render) -> dict:  # noqa: ANN001
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


def variant_set_json(vset) -> dict:  # noqa: ANN001
    return {"id": vset.id, "page_id": vset.page_id, "size": vset.size, "style_id": vset.style_id,
            "created_at": vset.created_at.isoformat(), "picked_render_id": vset.picked_render_id,
            "picked_at": vset.picked_at.isoformat() if vset.picked_at else None,
            "renders": [render_json(r) for r in vset.renders]}


def page_json(page, *, detail: bool = False) -> dict:  # noqa: ANN001
    data = batches.page_status(page, api=True)
    data["result_url"] = url_for("api.page_image", page_id=page.id, kind="result") \
        if batches.result_key(batches.current_render(page)) else None
    data["downloads"] = {fmt: url_for("api.page_download", page_id=page.id, fmt=fmt)
                         for fmt in downloads.available_page_files(page)}
    if detail:
        data["panels"] = [batches.panel_data(p) for p in page.panels]
        data.update(panels.check_state(page))
        data["comments"] = [{**c, "at": c["at"].isoformat()} for c in review.comments(page)]
    return data


def submitted_json(result: batches.Submitted) -> dict:
    data = batches.batch_status(result.batch, with_pages=False, api=True)
    data["pages"] = [page_json(p) for p in batches.batch_pages(result.batch)]
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
    return jsonify(styles=[style_json(s) for s in styles.list_styles(request.args.get("tag") or None)])


@bp.post("/v1/styles")
@require("submit")
def create_style():
    style = styles.create_style(request.form.get("name", ""), parse_tags(request.form.get("tags")),
                                request.files.get("image"))
    return jsonify(style_json(style)), 201


@bp.get("/v1/styles/<id:style_id>")
def get_style(style_id: int):
    return jsonify(style_json(styles.get_style(style_id)))


@bp.patch("/v1/styles/<id:style_id>")
@require("submit")
def edit_style(style_id: int):
    style = styles.get_style(style_id)
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not data:
        raise InvalidInput("Send a JSON object with palette, snap_palette and/or background.")
    unknown = sorted(set(data) - STYLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field(s) {', '.join(unknown)}: a style's palette, snap_palette and "
                           "background can be changed.")
    styles.edit_colour_key(style, **data)
    return jsonify(style_json(style))


@bp.post("/v1/styles/<id:style_id>/palette/extract")
@require("submit")
def extract_style_palette(style_id: int):
    style = styles.get_style(style_id)
    data = request.get_json(silent=True) or {}
    if not isinstance(data, dict):
        raise InvalidInput("Send a JSON object (optionally with k, the number of colours).")
    styles.extract_colour_key(style, data.get("k", PALETTE_COLOURS))
    return jsonify(style_json(style))


@bp.get("/v1/styles/<id:style_id>/image")
def style_image(style_id: int):
    return send_stored(styles.get_style(style_id).image_key)


# --- batches -----------------------------------------------------------------------------------

@bp.get("/v1/batches")
def list_batches():
    def answer() -> Response:
        rows = batches.list_batches(limit=query_int(request.args, "limit", BATCHES_LISTED_DEFAULT, 1,
                                                    BATCHES_LISTED_MAX),
                                    offset=query_int(request.args, "offset", 0, 0, OFFSET_MAX))
        return status_response(lambda: {"batches": batches.batch_list(rows, api=True)})

    return shared_status(answer)


@bp.post("/v1/batches")
@require("submit")
def create_batch():
    result = batches.create_from_form(request.form, request.files.getlist("pages"), request.files.get("style_image"))
    return jsonify(submitted_json(result)), 201


@bp.get("/v1/batches/<id:batch_id>")
def get_batch(batch_id: int):
    def answer() -> Response:
        batch = batches.get_batch(batch_id)
        uploads = batches.unfinished_uploads(batch)

        def build() -> dict:
            data = batches.batch_status(batch, with_pages=False, api=True, uploads=uploads)
            data["pages"] = [page_json(p) for p in batches.batch_pages(batch)]
            return data

        return status_response(build, batches.status_tag(batch, uploads))

    return shared_status(answer)


@bp.post("/v1/batches/<id:batch_id>/pages")
@require("submit")
def add_pages(batch_id: int):
    result = batches.add_pages(batches.get_batch(batch_id), request.files.getlist("pages"))
    return jsonify(submitted_json(result)), 201


@bp.post("/v1/batches/<id:batch_id>/cancel")
@require("submit")
def cancel_batch(batch_id: int):
    batch = batches.get_batch(batch_id)
    dropped = batches.cancel(batch)
    return jsonify({**batches.batch_status(batch, with_pages=False, api=True), "renders_cancelled": dropped})


@bp.get("/v1/batches/<id:batch_id>/download")
def download_batch(batch_id: int):
    archive = downloads.batch_archive(batches.get_batch(batch_id), request.args.get("format", "zip"),
                                      approved_only=request.args.get("scope", "approved") != "all")
    return send_archive(archive)


@bp.get("/v1/batches/<id:batch_id>/layers/<kind>")
def download_layers(batch_id: int, kind: str):
    archive = downloads.layered_archive(batches.get_batch(batch_id), kind,
                                        approved_only=request.args.get("scope", "approved") != "all")
    return send_archive(archive)


# --- pages and renders -------------------------------------------------------------------------

@bp.get("/v1/pages/<id:page_id>")
def get_page(page_id: int):
    return jsonify(page_json(batches.get_page(page_id), detail=True))


@bp.post("/v1/pages/<id:page_id>/retry")
@require("submit")
def retry_page(page_id: int):
    page = batches.get_page(page_id)
    batches.retry(page)
    return jsonify(page_json(page)), 202


@bp.post("/v1/pages/<id:page_id>/colour-anyway")
@require("submit")
def colour_page_anyway(page_id: int):
    page = batches.get_page(page_id)
    batches.colour_anyway(page)
    return jsonify(page_json(page)), 202


@bp.post("/v1/pages/<id:page_id>/review")
@require("review")
def review_page(page_id: int):
    page = batches.get_page(page_id)
    data = body()
    panel_id = optional_id(data, "panel_id")
    review.decide(page, panel_id, str(data.get("decision", "")), str(data.get("comment", "")))
    return jsonify(page_json(page, detail=True))


@bp.post("/v1/pages/<id:page_id>/review/undo")
@require("review")
def undo_review(page_id: int):
    page = batches.get_page(page_id)
    review.undo(page, optional_id(body(), "panel_id"))
    return jsonify(page_json(page, detail=True))


@bp.post("/v1/batches/<id:batch_id>/rerender-rejected")
@require("rerender")
def rerender_rejected(batch_id: int):
    batch = batches.get_batch(batch_id)
    data = body()
    done = review.rerender_rejected(batch, optional_id(data, "style_id"), parse_seed(data.get("seed")),
                                    str(data.get("hints") or ""))
    return jsonify(renders=[render_json(r) for r in done.renders],
                   skipped=[{"page_id": page.id, "panel_id": panel.id if panel else None, "reason": reason}
                            for page, panel, reason in done.skipped]), 202


@bp.post("/v1/pages/<id:page_id>/rerender")
@require("rerender")
def rerender_page(page_id: int):
    page = batches.get_page(page_id)
    data = body()
    panel_id, style_id = optional_id(data, "panel_id"), optional_id(data, "style_id")
    review.panel_on(page, panel_id)  # a panel of another page answers 404 before the fields are read
    render = review.rerender(page, panel_id, style_id, parse_seed(data.get("seed")), parse_hints(data.get("hints")))
    return jsonify(render_json(render)), 202


@bp.post("/v1/pages/<id:page_id>/variants")
@require("rerender")
def make_variants(page_id: int):
    page = batches.get_page(page_id)
    data = body()
    vset = review.variants(page, parse_count(data.get("count")), optional_id(data, "style_id"),
                           parse_hints(data.get("hints")))
    return jsonify(variant_set_json(vset)), 202


@bp.get("/v1/pages/<id:page_id>/panels")
def page_panels(page_id: int):
    return jsonify(panels.page_panels(batches.get_page(page_id)))


def _edited(page, edit) -> tuple:  # noqa: ANN001 - a Page and a PanelEdit
    return jsonify({**panels.page_panels(batches.get_page(page.id)), "edit": edit.to_dict()}), 200


@bp.put("/v1/pages/<id:page_id>/panels")
@require("rerender")
def edit_panels(page_id: int):
    page = batches.get_page(page_id)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("Send a JSON object: {\"panels\": [{\"id\"?, \"bbox\": [x, y, w, h]}], \"confirm\"?: bool}.")
    return _edited(page, panels.edit(page, data.get("panels"), parse_flag(data.get("confirm"), "confirm")))


@bp.post("/v1/pages/<id:page_id>/panels/merge")
@require("rerender")
def merge_panels(page_id: int):
    page = batches.get_page(page_id)
    return _edited(page, panels.merge(page, body().get("panel_ids")))


@bp.post("/v1/pages/<id:page_id>/panels/split")
@require("rerender")
def split_panel(page_id: int):
    page = batches.get_page(page_id)
    data = body()
    return _edited(page, panels.split(page, data.get("panel_id"), data.get("axis"), data.get("at")))


@bp.post("/v1/pages/<id:page_id>/panels/confirm")
@require("rerender")
def confirm_panels(page_id: int):
    page = batches.get_page(page_id)
    panels.confirm(page)
    return jsonify(panels.page_panels(batches.get_page(page.id))), 202


@bp.get("/v1/pages/<id:page_id>/variants")
def page_variants(page_id: int):
    return jsonify(variant_sets=[variant_set_json(v) for v in review.variant_sets(batches.get_page(page_id))])


@bp.post("/v1/renders/<id:render_id>/pick")
@require("rerender")
def pick_render(render_id: int):
    render = review.pick(render_id)
    return jsonify(page_json(batches.get_page(render.page_id), detail=True))


@bp.get("/v1/pages/<id:page_id>/renders")
def page_renders(page_id: int):
    return jsonify(renders=[render_json(r) for r in batches.list_renders(batches.get_page(page_id))])


@bp.get("/v1/pages/<id:page_id>/image/<kind>")
def page_image(page_id: int, kind: str):
    return files.page_image(page_id, kind)


@bp.get("/v1/pages/<id:page_id>/download/<fmt>")
def page_download(page_id: int, fmt: str):
    return files.page_download(page_id, fmt)


@bp.get("/v1/renders/<id:render_id>")
def get_render(render_id: int):
    return jsonify(render_json(batches.get_render(render_id)))


@bp.get("/v1/renders/<id:render_id>/files/<kind>")
def render_file(render_id: int, kind: str):
    return files.render_file(render_id, kind)


# --- webhooks (admins) -------------------------------------------------------------------------

def webhook_json(hook) -> dict:  # noqa: ANN001
    return {"id": hook.id, "url": hook.url, "secret": hook.secret, "active": hook.active,
            "created_at": hook.created_at.isoformat()}


def delivery_json(d) -> dict:  # noqa: ANN001
    return {"id": d.id, "webhook_id": d.webhook_id, "batch_id": d.batch_id, "event": d.event,
            "status": d.status.value, "attempts": d.attempts, "last_status_code": d.last_status_code,
            "last_error": d.last_error, "created_at": d.created_at.isoformat(),
            "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None, "payload": d.payload}


@bp.get("/v1/webhooks")
@require("admin")
def list_webhooks():
    return jsonify(webhooks=[webhook_json(h) for h in webhooks.endpoints()])


@bp.post("/v1/webhooks")
@require("admin")
def add_webhook():
    return jsonify(webhook_json(webhooks.add(str(body().get("url", ""))))), 201


@bp.delete("/v1/webhooks/<id:webhook_id>")
@require("admin")
def delete_webhook(webhook_id: int):
    webhooks.remove(webhook_id)
    return "", 204


@bp.get("/v1/webhooks/deliveries")
@require("admin")
def webhook_deliveries():
    return jsonify(deliveries=[delivery_json(d) for d in webhooks.deliveries()])


@bp.get("/openapi.json")
def openapi():
    from ..openapi import document

    return jsonify(document(request.host_url.rstrip("/")))
