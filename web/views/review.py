"""Review: line art, result and style reference side by side, a 100% view, per-page and per-panel
approve or reject and undo (the last decision stays one click, or `u`, away on the next page),
comments, re-rendering a page or panel with another style, seed or colour hints (placed on a panel)
or everything rejected in a batch at once, and variant sets: N re-renders with random seeds shown
side by side, one picked."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, session, url_for

from panelpaint.store.errors import NotFound

from panelpaint.store.errors import InvalidInput

from ..errors import USER_ERRORS, back_with_error
from ..services import batches, downloads, panels, review, styles
from ..services.fields import optional_id, parse_count, parse_hints, parse_seed
from .auth import require

bp = Blueprint("review", __name__, url_prefix="/review")


@bp.get("/batch/<id:batch_id>")
def first(batch_id: int):
    batch = batches.get_batch(batch_id)
    page = review.next_to_review(batch) or (batch.pages[0] if batch.pages else None)
    if page is None:
        flash("This batch has no pages yet.", "info")
        return redirect(url_for("batches.detail", batch_id=batch.id))
    return redirect(url_for("review.page", page_id=page.id))


@bp.get("/<id:page_id>")
def page(page_id: int):
    page = batches.get_page(page_id)
    batch = page.batch
    pages = batch.pages
    index = [p.id for p in pages].index(page.id)
    render = batches.current_render(page)
    renders = batches.list_renders(page)
    sets = review.variant_sets(page)
    return render_template(
        "review.html", page=page, batch=batch, render=render,
        style=styles.find_style((render.style_id if render else None) or page.style_id or batch.default_style_id),
        result_key=batches.result_key(render), panels=page.panels,
        shown_panel=next((p for p in page.panels if render is not None and p.id == render.panel_id), None),
        renders=renders, panel_renders=review.panel_results(renders), used_hints=review.used_hints(render, page.panels),
        styles=styles.list_styles(), comments=review.comments(page),
        prev_page=pages[index - 1] if index > 0 else None,
        next_page=pages[index + 1] if index + 1 < len(pages) else None,
        position=index + 1, count=len(pages), files=downloads.available_page_files(page),
        variant_set=sets[0] if sets else None, last_decision=_last_decision(),
        page_render=review.page_render_of(render, renders, sets),
        rejected_panels=[p.position + 1 for p in page.panels if p.review_status.value == "rejected"],
        zoom_befores=review.zoom_befores(page, render, renders), editor=panels.page_panels(page),
    )


def _what(page, panel_id: int | None) -> str:  # noqa: ANN001 - Page
    return f"Panel {next(p.position + 1 for p in page.panels if p.id == panel_id)}" if panel_id else page.source_name


# The flask session key of the reviewer's last decision, so the next page can offer to undo it.
LAST_DECISION = "last_decision"


def _last_decision() -> dict | None:
    """The reviewer's last decision while it still stands: {page, panel, decision}, else None."""
    last = session.get(LAST_DECISION)
    if not last:
        return None
    try:
        page = batches.get_page(last["page_id"])
        panel = review.panel_on(page, last.get("panel_id"))
    except (NotFound, KeyError):  # gone, or another studio's page since (another login)
        return None
    target = panel or page
    if target.review_status.value == "pending":
        return None
    return {"page": page, "panel": panel, "decision": target.review_status.value}


@bp.post("/<id:page_id>/decision")
@require("review")
def decision(page_id: int):
    page = batches.get_page(page_id)
    try:
        panel_id = optional_id(request.form, "panel_id")
        review.decide(page, panel_id, request.form.get("decision", ""), request.form.get("comment", ""))
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("review.page", page_id=page.id))
    flash(f"{_what(page, panel_id)}: {request.form['decision']}.", "success")
    session[LAST_DECISION] = {"page_id": page.id, "panel_id": panel_id}
    if panel_id is None:
        following = review.next_to_review(page.batch, page.position)
        if following is not None and following.id != page.id:
            return redirect(url_for("review.page", page_id=following.id))
    return redirect(url_for("review.page", page_id=page.id))


@bp.post("/<id:page_id>/undo")
@require("review")
def undo(page_id: int):
    page = batches.get_page(page_id)
    panel_id = optional_id(request.form, "panel_id")
    try:
        review.undo(page, panel_id)
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("review.page", page_id=page.id))
    session.pop(LAST_DECISION, None)
    flash(f"{_what(page, panel_id)}: decision undone, pending again (the history keeps both).", "success")
    return redirect(url_for("review.page", page_id=page.id))


@bp.post("/batch/<id:batch_id>/rerender-rejected")
@require("rerender")
def rerender_rejected(batch_id: int):
    batch = batches.get_batch(batch_id)
    form = request.form
    try:
        done = review.rerender_rejected(batch, optional_id(form, "style_id"), parse_seed(form.get("seed")),
                                        form.get("hints", ""))
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("batches.detail", batch_id=batch.id))
    flash(f"{len(done.renders)} rejected page(s) or panel(s) queued again.", "success")
    for page, panel, reason in done.skipped:
        flash(f"{page.source_name}{f' panel {panel.position + 1}' if panel else ''} not queued: {reason}", "info")
    return redirect(url_for("batches.detail", batch_id=batch.id))


@bp.post("/<id:page_id>/comment")
def comment(page_id: int):
    page = batches.get_page(page_id)
    try:
        review.add_comment(page, request.form.get("comment", ""))
        flash("Comment added.", "success")
    except USER_ERRORS as exc:
        flash(str(exc), "error")
    return redirect(url_for("review.page", page_id=page.id))


@bp.post("/<id:page_id>/rerender")
@require("rerender")
def rerender(page_id: int):
    page = batches.get_page(page_id)
    form = request.form
    try:
        render = review.rerender(page, optional_id(form, "panel_id"), optional_id(form, "style_id"),
                                 parse_seed(form.get("seed")), parse_hints(form.get("hints")))
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("review.page", page_id=page.id))
    flash(f"Re-render queued (version {render.version}).", "success")
    return redirect(url_for("review.page", page_id=page.id))


@bp.post("/<id:page_id>/variants")
@require("rerender")
def variants(page_id: int):
    page = batches.get_page(page_id)
    try:
        vset = review.variants(page, parse_count(request.form.get("count")), optional_id(request.form, "style_id"), None)
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("review.page", page_id=page.id))
    flash(f"{vset.size} variants queued (versions {vset.renders[0].version}–{vset.renders[-1].version}); "
          "they appear side by side as they finish.", "success")
    return redirect(url_for("review.page", page_id=page.id) + "#variants")


@bp.get("/<id:page_id>/variants.json")
def variants_status(page_id: int):
    page = batches.get_page(page_id)
    sets = review.variant_sets(page)
    return jsonify(variant_set=review.variant_status(page, sets[0]) if sets else None)


@bp.post("/<id:page_id>/pick")
@require("rerender")
def pick(page_id: int):
    page = batches.get_page(page_id)
    try:
        render_id = optional_id(request.form, "render_id")
    except InvalidInput as exc:
        abort(400, description=str(exc))
    if render_id is None:
        abort(400, description="Choose the variant to pick.")
    try:
        render = review.pick(render_id, page)
    except USER_ERRORS as exc:
        return back_with_error(exc, url_for("review.page", page_id=page.id) + "#variants")
    flash(f"Variant v{render.version} (seed {render.seed}) is now this page's result; review it again.", "success")
    return redirect(url_for("review.page", page_id=page.id))
