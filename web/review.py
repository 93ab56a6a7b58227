"""Review: line art, result and style reference side by side, per-page and per-panel approve or
reject, comments, re-rendering a page or panel with another style, seed or colour hints (placed on
a panel), and variant sets: N re-renders with random seeds shown side by side, one picked."""
from __future__ import annotations

import json

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from panelpaint.hints import validate_hints
from panelpaint.limits import COMMENT_MAX
from panelpaint.store import batches as batch_store
from panelpaint.store import reviews as review_store
from panelpaint.store import styles as style_store
from panelpaint.store import variants as variant_store
from panelpaint.store.batches import panel_of
from panelpaint.store.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import list_events, log_event
from panelpaint.store.schema import ReviewStatus, RunStatus

from . import downloads, jobs
from .auth import require
from .batches import owned_batch, owned_page
from .services import db

bp = Blueprint("review", __name__, url_prefix="/review")

COMMENT_EVENT = "review.comment"


class ReviewError(Exception):
    """A decision or comment that cannot be recorded; the message is for the user."""


def decide(page, panel_id: int | None, decision: str, comment: str) -> None:
    """Record an approve/reject decision on a page or one of its panels."""
    if decision not in ("approved", "rejected"):
        raise ReviewError("Decision must be approve or reject.")
    if panel_id is not None and panel_id not in {p.id for p in page.panels}:
        raise NotFound(f"panel {panel_id}")
    try:
        review_store.review(db(), page.id, panel_id, current_user.id, decision, comment)
    except (IllegalTransition, InvalidInput, Forbidden) as exc:
        raise ReviewError(str(exc)) from None
    db().commit()


def add_comment(page, text: str) -> None:
    text = (text or "").strip()
    if not text:
        raise ReviewError("Write a comment first.")
    log_event(db(), COMMENT_EVENT, studio_id=current_user.studio_id, batch_id=page.batch_id, page_id=page.id,
              data={"user_id": current_user.id, "email": current_user.email, "text": text[:COMMENT_MAX]})
    db().commit()


def parse_hints(raw) -> list | None:  # noqa: ANN001 - JSON text or an already parsed list
    if raw is None or raw == "":
        return None
    try:
        hints = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(hints, list):
            raise ValueError("hints must be a list of {x, y, color}")
        return validate_hints(hints)
    except (ValueError, TypeError) as exc:
        raise jobs.SubmitError(f"Bad colour hints: {exc}") from None


def comments(page) -> list[dict]:
    """Decisions with their comments and free comments on a page, newest first."""
    from panelpaint.store.schema import User

    items = []
    for r in review_store.list_reviews(db(), current_user.studio_id, page.id):
        user = db().get(User, r.reviewer_id) if r.reviewer_id else None
        items.append({"at": r.created_at, "who": user.email if user else "?", "decision": r.decision.value,
                      "panel_id": r.panel_id, "text": r.comment})
    for e in list_events(db(), current_user.studio_id, page_id=page.id, kind=COMMENT_EVENT):
        items.append({"at": e.created_at, "who": e.data.get("email", "?"), "decision": None, "panel_id": None,
                      "text": e.data.get("text", "")})
    return sorted(items, key=lambda i: i["at"], reverse=True)


def next_to_review(batch, after_position: int = -1):
    """The next finished page awaiting review after `after_position` (wrapping), or None."""
    pending = [p for p in batch.pages if p.status == RunStatus.succeeded and p.review_status == ReviewStatus.pending]
    later = [p for p in pending if p.position > after_position]
    return (later or pending or [None])[0]


@bp.get("/batch/<int:batch_id>")
def first(batch_id: int):
    batch = owned_batch(batch_id)
    page = next_to_review(batch) or (batch.pages[0] if batch.pages else None)
    if page is None:
        flash("This batch has no pages yet.", "info")
        return redirect(url_for("batches.detail", batch_id=batch.id))
    return redirect(url_for("review.page", page_id=page.id))


@bp.get("/<int:page_id>")
def page(page_id: int):
    page = owned_page(page_id)
    batch = page.batch
    pages = batch.pages
    index = [p.id for p in pages].index(page.id)
    render = jobs.current_render(page)
    style_id = (render.style_id if render else None) or page.style_id or batch.default_style_id
    style = style_store.get_style(db(), current_user.studio_id, style_id) if style_id else None
    renders = batch_store.list_renders(db(), current_user.studio_id, page.id)
    # The newest finished re-render of each panel, linked beside it. The page's result itself is the
    # current render: a finished panel re-render is merged into the page and becomes that result.
    panel_renders = {}
    for r in renders:
        if r.panel_id is not None and r.status == RunStatus.succeeded and r.panel_id not in panel_renders:
            panel_renders[r.panel_id] = r
    sets = variant_store.list_variant_sets(db(), current_user.studio_id, page.id)
    return render_template(
        "review.html", page=page, batch=batch, render=render, style=style,
        result_key=jobs.result_key(render), panels=page.panels,
        shown_panel=next((p for p in page.panels if render is not None and p.id == render.panel_id), None), renders=renders, panel_renders=panel_renders,
        used_hints=used_hints(render, page.panels),
        styles=style_store.list_styles(db(), current_user.studio_id), comments=comments(page),
        prev_page=pages[index - 1] if index > 0 else None,
        next_page=pages[index + 1] if index + 1 < len(pages) else None,
        position=index + 1, count=len(pages), files=downloads.available_page_files(page),
        variant_set=sets[0] if sets else None,
    )


def used_hints(render, panels) -> list[dict]:  # noqa: ANN001 - Render | None, [Panel]
    """The hint dots the shown render was made with, each with the panel it coloured (1-based)."""
    out = []
    for dot in (render.hints or []) if render is not None else []:
        on = [p for p in panels if panel_of(p).contains(dot.get("x", -1), dot.get("y", -1))]
        if render.panel_id is not None:
            on = [p for p in on if p.id == render.panel_id]
        out.append({**dot, "panel": on[0].position + 1 if on else None})
    return out


def variant_status(page, vset) -> dict:  # noqa: ANN001 - Page, VariantSet
    """A variant set as the review screen polls it: each render's state, thumbnail and whether it is shown."""
    cells = []
    for r in vset.renders:
        done = jobs.result_key(r) is not None
        cells.append({"id": r.id, "version": r.version, "seed": r.seed, "status": r.status.value, "error": r.error,
                      "current": r.id == page.current_render_id,
                      "thumb_url": url_for("batches.render_file", render_id=r.id, kind="composite", size=360)
                      if done and (r.outputs or {}).get("composite") else None})
    return {"id": vset.id, "size": vset.size, "picked_render_id": vset.picked_render_id,
            "active": any(c["status"] in ("queued", "running") for c in cells), "renders": cells}


@bp.post("/<int:page_id>/decision")
@require("review")
def decision(page_id: int):
    page = owned_page(page_id)
    panel_id = request.form.get("panel_id", type=int)
    try:
        decide(page, panel_id, request.form.get("decision", ""), request.form.get("comment", ""))
    except NotFound:
        abort(404)
    except ReviewError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("review.page", page_id=page.id))
    what = f"Panel {next(p.position + 1 for p in page.panels if p.id == panel_id)}" if panel_id else page.source_name
    flash(f"{what}: {request.form['decision']}.", "success")
    if panel_id is None:
        following = next_to_review(page.batch, page.position)
        if following is not None and following.id != page.id:
            return redirect(url_for("review.page", page_id=following.id))
    return redirect(url_for("review.page", page_id=page.id))


@bp.post("/<int:page_id>/comment")
def comment(page_id: int):
    page = owned_page(page_id)
    try:
        add_comment(page, request.form.get("comment", ""))
        flash("Comment added.", "success")
    except ReviewError as exc:
        flash(str(exc), "error")
    return redirect(url_for("review.page", page_id=page.id))


@bp.post("/<int:page_id>/rerender")
@require("rerender")
def rerender(page_id: int):
    page = owned_page(page_id)
    form = request.form
    try:
        panel_id = form.get("panel_id", type=int)
        if panel_id is not None and panel_id not in {p.id for p in page.panels}:
            abort(404)
        style_id = form.get("style_id", type=int)
        render = jobs.rerender(page, panel_id, style_id, jobs.parse_seed(form.get("seed")),
                               parse_hints(form.get("hints")))
    except jobs.SubmitError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("review.page", page_id=page.id))
    flash(f"Re-render queued (version {render.version}).", "success")
    return redirect(url_for("review.page", page_id=page.id))


@bp.post("/<int:page_id>/variants")
@require("rerender")
def variants(page_id: int):
    page = owned_page(page_id)
    try:
        vset = jobs.variants(page, jobs.parse_count(request.form.get("count")), request.form.get("style_id", type=int),
                             None)
    except jobs.SubmitError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("review.page", page_id=page.id))
    flash(f"{vset.size} variants queued (versions {vset.renders[0].version}–{vset.renders[-1].version}); "
          "they appear side by side as they finish.", "success")
    return redirect(url_for("review.page", page_id=page.id) + "#variants")


@bp.get("/<int:page_id>/variants.json")
def variants_status(page_id: int):
    page = owned_page(page_id)
    sets = variant_store.list_variant_sets(db(), current_user.studio_id, page.id)
    return jsonify(variant_set=variant_status(page, sets[0]) if sets else None)


@bp.post("/<int:page_id>/pick")
@require("rerender")
def pick(page_id: int):
    page = owned_page(page_id)
    render_id = request.form.get("render_id", type=int)
    if render_id is None:
        abort(400, description="Choose the variant to pick.")
    render = batch_store.get_render(db(), current_user.studio_id, render_id)
    if render is None or render.page_id != page.id:
        abort(404)
    try:
        render = jobs.pick(render.id)
    except NotFound:
        abort(404)
    except jobs.SubmitError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("review.page", page_id=page.id) + "#variants")
    flash(f"Variant v{render.version} (seed {render.seed}) is now this page's result; review it again.", "success")
    return redirect(url_for("review.page", page_id=page.id))
