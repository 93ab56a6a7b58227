"""Review: approve or reject a page or one of its panels and undo it, comments, re-rendering a page
or panel with another style, seed or colour hints (or everything rejected in a batch at once), and
variant sets (N seeds side by side, one picked)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import url_for
from flask_login import current_user

from panelpaint.limits import COMMENT_MAX
from panelpaint.store import renders as render_store
from panelpaint.store import reviews as review_store
from panelpaint.store import rework as rework_store
from panelpaint.store import variants as variant_store
from panelpaint.store.batches import panel_of
from panelpaint.store.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import list_events, log_event
from panelpaint.store.schema import Batch, Page, Panel, Render, ReviewStatus, RunStatus, User, VariantSet

from . import db, queue
from .batches import PAGE_THUMB, get_render, render_thumbnail_key, result_key
from .errors import Refused

COMMENT_EVENT = "review.comment"
DECISIONS = (ReviewStatus.approved, ReviewStatus.rejected)


def panel_on(page: Page, panel_id: int | None) -> Panel | None:
    """The page's panel `panel_id` (None for None); `NotFound` when the page has no such panel."""
    if panel_id is None:
        return None
    panel = next((p for p in page.panels if p.id == panel_id), None)
    if panel is None:
        raise NotFound(f"panel {panel_id} is not on page {page.id}")
    return panel


def decide(page: Page, panel_id: int | None, decision: str, comment: str) -> None:
    """Record an approve/reject decision on a page or one of its panels. A decision that cannot be
    recorded now (nothing finished to judge, already decided) is `Refused`; a decision other than
    approved or rejected is `InvalidInput`."""
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be {' or '.join(d.value for d in DECISIONS)}, got {decision[:40]!r}")
    panel_on(page, panel_id)
    try:
        review_store.review(db(), page.id, panel_id, current_user.id, decision, comment)
    except (IllegalTransition, InvalidInput, Forbidden) as exc:
        raise Refused(str(exc)) from None
    db().commit()


def undo(page: Page, panel_id: int | None) -> None:
    """Take back the decision on a page or one of its panels: pending again, the decision kept in
    the history as undone. `Refused` when there is nothing to undo."""
    panel_on(page, panel_id)
    try:
        review_store.undo_review(db(), page.id, panel_id, current_user.id)
    except (IllegalTransition, Forbidden) as exc:
        raise Refused(str(exc)) from None
    db().commit()


def rerender_rejected(batch: Batch, style_id: int | None, seed: int | None, hints: str) -> rework_store.Rework:
    """Queue every rejected page and panel of the batch again (see `panelpaint.store.rework`) and
    send them; `Refused` when nothing is rejected or the batch is cancelled."""
    with _style_field():
        try:
            done = rework_store.rerender_rejected(db(), current_user.studio_id, batch.id, style_id, seed,
                                                  hints or rework_store.Hints.keep, user_id=current_user.id)
        except IllegalTransition as exc:
            raise Refused(str(exc)) from None
    db().commit()
    queue.enqueue(done.renders)
    return done


def rejected_count(batch: Batch) -> int:
    """How many of the batch's finished pages and panels are rejected (what `rerender_rejected` redoes)."""
    return rework_store.rejected_count(batch)


def add_comment(page: Page, text: str) -> None:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("Write a comment first.")
    log_event(db(), COMMENT_EVENT, studio_id=current_user.studio_id, batch_id=page.batch_id, page_id=page.id,
              data={"user_id": current_user.id, "email": current_user.email, "text": text[:COMMENT_MAX]})
    db().commit()


def comments(page: Page) -> list[dict[str, Any]]:
    """Decisions with their comments and free comments on a page, newest first."""
    items = []
    for r in review_store.list_reviews(db(), current_user.studio_id, page.id):
        user = db().get(User, r.reviewer_id) if r.reviewer_id else None
        items.append({"at": r.created_at, "who": user.email if user else "?", "decision": r.decision.value,
                      "panel_id": r.panel_id, "text": r.comment, "undone": r.undone_at is not None})
    for e in list_events(db(), current_user.studio_id, page_id=page.id, kind=COMMENT_EVENT):
        items.append({"at": e.created_at, "who": e.data.get("email", "?"), "decision": None, "panel_id": None,
                      "text": e.data.get("text", ""), "undone": False})
    return sorted(items, key=lambda i: i["at"], reverse=True)


def next_to_review(batch, after_position: int = -1) -> Page | None:  # noqa: ANN001 - Batch
    """The next finished page awaiting review after `after_position` (wrapping), or None."""
    pending = [p for p in batch.pages if p.status == RunStatus.succeeded and p.review_status == ReviewStatus.pending]
    later = [p for p in pending if p.position > after_position]
    return (later or pending or [None])[0]


def panel_results(renders: list[Render]) -> dict[int, Render]:
    """The newest finished re-render of each panel (`renders` newest first), linked beside it. The
    page's result itself is its current render: a finished panel re-render is merged into the page
    and becomes that result."""
    found: dict[int, Render] = {}
    for r in renders:
        if r.panel_id is not None and r.status == RunStatus.succeeded and r.panel_id not in found:
            found[r.panel_id] = r
    return found


def page_render_of(shown: Render | None, renders: list[Render], sets: list[VariantSet]) -> Render | None:
    """The page-level render the shown result is built on: itself, or, when it is a panel re-render
    merged into the page, the page render finished last before it (a variant only once picked), so
    the page header never shows a panel's version and seed as the page's own."""
    if shown is None or shown.panel_id is None:
        return shown
    picked = {v.picked_render_id for v in sets}
    before = [r for r in renders if r.panel_id is None and r.status == RunStatus.succeeded and r.finished_at
              and (r.variant_set_id is None or r.id in picked)
              and (shown.finished_at is None or r.finished_at <= shown.finished_at)]
    return max(before, key=lambda r: r.finished_at, default=None)


# How many earlier results the 100% view offers as "before", beside the line art.
ZOOM_EARLIER_RESULTS = 6


def zoom_befores(page: Page, shown: Render | None, renders: list[Render]) -> list[dict[str, str]]:
    """What the 100% view can put beside the shown result, at native size: the line art, then the
    earlier finished results of the page (newest first), each {label, url}."""
    out = [{"label": "Line art", "url": url_for("batches.page_image", page_id=page.id, kind="source")}]
    for r in renders:
        if len(out) > ZOOM_EARLIER_RESULTS:
            break
        if (shown is not None and r.id == shown.id) or r.status != RunStatus.succeeded \
                or not (r.outputs or {}).get("composite"):
            continue
        what = f"panel {r.panel.position + 1}" if r.panel is not None else "page"
        seed = "canonical" if r.seed is None else f"seed {r.seed}"
        out.append({"label": f"Earlier result: {what} v{r.version} ({seed})",
                    "url": url_for("batches.render_file", render_id=r.id, kind="composite")})
    return out


def used_hints(render: Render | None, panels: list[Panel]) -> list[dict]:
    """The hint dots the shown render was made with, each with the panel it coloured (1-based)."""
    out = []
    for dot in (render.hints or []) if render is not None else []:
        on = [p for p in panels if panel_of(p).contains(dot.get("x", -1), dot.get("y", -1))]
        if render.panel_id is not None:
            on = [p for p in on if p.id == render.panel_id]
        out.append({**dot, "panel": on[0].position + 1 if on else None})
    return out


def rerender(page: Page, panel_id: int | None, style_id: int | None, seed: int | None, hints: list | None) -> Render:
    """A new render of the page or of one of its panels (`NotFound` for a panel not on the page)."""
    panel_on(page, panel_id)
    with _style_field():
        render = render_store.rerender(db(), page.id, panel_id, style_id, seed, hints, user_id=current_user.id)
    db().commit()
    queue.enqueue([render])
    return render


def variants(page: Page, count: int, style_id: int | None, hints: list | None) -> VariantSet:
    """Queue a variant set of a finished page and send its renders; see `panelpaint.store.variants`."""
    with _style_field():
        vset = variant_store.queue_variants(db(), page.id, count, style_id, hints, user_id=current_user.id)
    db().commit()
    queue.enqueue(list(vset.renders))
    return vset


def pick(render_id: int, page: Page | None = None) -> Render:
    """Make a finished variant its page's result (`NotFound` for another studio's render, or one
    of another page than `page`)."""
    if page is not None and get_render(render_id).page_id != page.id:
        raise NotFound(f"render {render_id} is not of page {page.id}")
    render = variant_store.pick_variant(db(), current_user.studio_id, render_id, user_id=current_user.id)
    db().commit()
    return render


def variant_sets(page: Page) -> list[VariantSet]:
    """The page's variant sets, newest first."""
    return variant_store.list_variant_sets(db(), current_user.studio_id, page.id)


def variant_status(page: Page, vset: VariantSet) -> dict[str, Any]:
    """A variant set as the review screen polls it: each render's state, thumbnail and whether it is shown."""
    cells = []
    for r in vset.renders:
        cells.append({"id": r.id, "version": r.version, "seed": r.seed, "status": r.status.value, "error": r.error,
                      "current": r.id == page.current_render_id,
                      "thumb_url": url_for("batches.render_file", render_id=r.id, kind="composite", size=PAGE_THUMB)
                      if render_thumbnail_key(r, "composite", PAGE_THUMB) else None})
    return {"id": vset.id, "size": vset.size, "picked_render_id": vset.picked_render_id,
            "active": any(c["status"] in ("queued", "running") for c in cells), "renders": cells}


@contextmanager
def _style_field() -> Iterator[None]:
    """A style named in the request that is not in the studio's library is a bad field (400), not
    a missing row of the URL (404)."""
    try:
        yield
    except NotFound as exc:
        raise InvalidInput(str(exc)) from None
