"""A person's edits of a page's panel boxes, and the panel check that holds a page before colouring.

`edit_panels` replaces a page's boxes with the ones a reviewer kept, moved, drew, merged or split:
the reading order is numbered again for the page's direction, a panel that is gone keeps its row
while renders or reviews refer to it (retired), and on a finished page only the panels that
changed are queued for a panel re-render. `hold_for_check` and `confirm_panels` are the check
itself: a held page's render is not claimed until its boxes are confirmed.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.limits import PANEL_SIDE_MIN, PANELS_MAX
from panelpaint.panels import Panel as PanelModel
from panelpaint.panels import order_panels
from panelpaint.panels.edit import merged, split
from panelpaint.store.batches import CHECK_PANELS, panel_of
from panelpaint.store.db import ROW_LOCK
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.renders import queue_render
from panelpaint.store.schema import Page, Panel, PanelCheck, Render, Review, RunStatus, utcnow
from panelpaint.store.states import ACTIVE

# Positions are moved here first while a page is renumbered, so no two panels share one meanwhile.
_RENUMBER_OFFSET = 1_000_000


@dataclasses.dataclass(frozen=True)
class PanelEdit:
    """What an edit did: panel ids kept as they were, changed (moved or resized), added, removed
    (deleted, or retired when renders or reviews refer to them); the panel re-renders it queued
    (send them after the commit), and the page render released by a confirmed check, if any."""

    kept: list[int]
    changed: list[int]
    added: list[int]
    removed: list[int]
    renders: list[Render]
    released: Render | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "changed": self.changed, "added": self.added, "removed": self.removed,
                "rerenders": [r.id for r in self.renders], "released": self.released is not None}


def _lock_page(session: Session, page_id: int) -> Page:
    page = session.get(Page, page_id, with_for_update=ROW_LOCK, populate_existing=True)
    if page is None:
        raise NotFound(f"page {page_id} does not exist")
    return page


def _box(raw: Any, index: int, page: Page) -> tuple[int | None, PanelModel, bool]:
    """Entry `index` of an edit: the id of the panel it keeps (None for a new box), its geometry,
    checked to lie inside the page with sides of at least PANEL_SIDE_MIN pixels, and whether it
    gave its own polygon (else the box's rectangle, or a kept panel's own polygon)."""
    where = f"panel {index + 1}"
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: each panel must be an object with a bbox [x, y, w, h]")
    panel_id = raw.get("id")
    if panel_id is not None and (isinstance(panel_id, bool) or not isinstance(panel_id, int)):
        raise InvalidInput(f"{where}: id must be the id of one of the page's panels, got {panel_id!r}")
    try:
        box = PanelModel.from_dict({"bbox": raw.get("bbox"), "polygon": raw.get("polygon")})
    except ValueError as exc:
        raise InvalidInput(f"{where}: {exc}") from None
    x, y, w, h = box.bbox
    if w < PANEL_SIDE_MIN or h < PANEL_SIDE_MIN:
        raise InvalidInput(f"{where}: a panel is at least {PANEL_SIDE_MIN}x{PANEL_SIDE_MIN} pixels, got {w}x{h}")
    if x < 0 or y < 0 or x + w > page.width or y + h > page.height:
        raise InvalidInput(f"{where}: the box {x},{y} {w}x{h} is not inside the {page.width}x{page.height} page")
    if any(not (x <= px < x + w and y <= py < y + h) for px, py in box.polygon):
        raise InvalidInput(f"{where}: its polygon leaves its bbox")
    return panel_id, box, bool(raw.get("polygon"))


def _has_history(session: Session, panel_id: int) -> bool:
    renders = sa.select(Render.id).where(Render.panel_id == panel_id).exists()
    reviews = sa.select(Review.id).where(Review.panel_id == panel_id).exists()
    return bool(session.scalar(sa.select(sa.or_(renders, reviews))))


def _refuse_while_colouring(session: Session, page: Page) -> None:
    """An edit waits while the page is being coloured (its result would be for the old boxes) and
    while a panel re-render is queued (it would colour a box that may be gone)."""
    busy = session.scalar(sa.select(Render.id).where(
        Render.page_id == page.id, Render.variant_set_id.is_(None), Render.status.in_(list(ACTIVE)),
        sa.or_(Render.status == RunStatus.running, Render.panel_id.is_not(None))).limit(1))
    if busy is not None:
        raise IllegalTransition(f"page {page.id} is being coloured (render {busy}): edit its panels when it is done")


def edit_panels(session: Session, page_id: int, panels: Sequence[Any], *, user_id: int | None = None,
                confirm: bool = False) -> PanelEdit:
    """Replace the page's panels with `panels`: each {bbox: [x, y, w, h], polygon?, id?}, where `id`
    names a panel of the page it keeps (moved or resized when its box differs) and an entry
    without one is a new box; a panel left out is removed. Boxes lie inside the page, with sides of
    at least PANEL_SIDE_MIN; at most PANELS_MAX. The reading order is numbered again (the page's
    direction). On a finished page the changed and new panels are each queued for a panel
    re-render, nothing else. With `confirm`, a page held for its panel check is released too.

    `InvalidInput` for a bad box; `IllegalTransition` while the page is being coloured, or for a
    page with no readable image. The caller commits, then sends `renders` and `released`."""
    page = _lock_page(session, page_id)
    if page.source_key is None or not page.width or not page.height:
        raise IllegalTransition(f"page {page_id} has no readable image: it has no panels to edit")
    if not isinstance(panels, Sequence) or isinstance(panels, (str, bytes)) or not panels:
        raise InvalidInput("panels must be a non-empty list of {bbox: [x, y, w, h]}")
    if len(panels) > PANELS_MAX:
        raise InvalidInput(f"a page has at most {PANELS_MAX} panels, got {len(panels)}")
    boxes = [_box(raw, i, page) for i, raw in enumerate(panels)]
    _refuse_while_colouring(session, page)
    rows = {p.id: p for p in page.panels}
    named = [pid for pid, _, _ in boxes if pid is not None]
    if len(set(named)) != len(named):
        raise InvalidInput("a panel id may appear once in an edit")
    unknown = sorted(set(named) - set(rows))
    if unknown:
        raise InvalidInput(f"panel {unknown[0]} is not on page {page_id}")

    kept, changed, removed = [], [], []
    for pid in [pid for pid in rows if pid not in named]:
        row = rows.pop(pid)
        removed.append(pid)
        if _has_history(session, pid):
            row.retired_at, row.position = utcnow(), -row.id
        else:
            session.delete(row)
    session.flush()
    edited: list[tuple[Panel, PanelModel]] = []
    new: list[Panel] = []
    for i, (pid, box, own_polygon) in enumerate(boxes):
        row = rows.get(pid) if pid is not None else None
        if row is None:
            row = Panel(page_id=page_id, hints=[], style_id=None)
            session.add(row)
            new.append(row)
        elif panel_of(row).bbox == box.bbox and (not own_polygon or panel_of(row).polygon == box.polygon):
            kept.append(pid)
            box = panel_of(row)
        else:
            changed.append(pid)
        if row in new or pid in changed:
            x, y, w, h = box.bbox
            row.x, row.y, row.w, row.h, row.polygon = x, y, w, h, [list(p) for p in box.polygon]
            row.confidence = 1.0  # a box a person drew or placed
            # A hint dot that the new box no longer covers would colour nothing: it is dropped.
            row.hints = [h for h in (row.hints or []) if box.contains(h.get("x", -1), h.get("y", -1))]
        row.position = _RENUMBER_OFFSET + i
        edited.append((row, box))
    session.flush()
    _renumber(session, page, edited)
    added = [row.id for row in new]
    page.panels_total = len(edited)
    session.flush()
    session.expire(page, ["panels"])
    renders = []
    if page.status == RunStatus.succeeded and (changed or added):
        renders = [queue_render(session, page_id, pid, user_id=user_id, reason="panel_edit")
                   for pid in changed + added]
    log_event(session, "page.panels_edited", studio_id=page.batch.studio_id, batch_id=page.batch_id,
              page_id=page_id, data={"user_id": user_id, "kept": kept, "changed": changed, "added": added,
                                     "removed": removed, "rerenders": [r.id for r in renders]})
    released = confirm_panels(session, page_id, user_id=user_id) if confirm and page.panel_check == PanelCheck.awaiting \
        else None
    return PanelEdit(kept, changed, added, removed, renders, released)


def _renumber(session: Session, page: Page, edited: list[tuple[Panel, PanelModel]]) -> None:
    """Number the page's panels in reading order for its direction (rows, then across)."""
    models = []
    for i, (_, box) in enumerate(edited):
        models.append(PanelModel(box.bbox, box.polygon, extra={"index": i}))
    for order, model in enumerate(order_panels(models, page.direction or page.batch.direction)):
        edited[model.extra["index"]][0].position = order
    session.flush()


def hold_for_check(session: Session, page_id: int, layout_confidence: float, check_below: float) -> bool:
    """Record how sure detection was of the page's layout, and hold the page for a panel check
    when that is below `check_below` (unless its panels were checked already, or it is no longer
    waiting to be coloured); True when the page is now held. A render already colouring it
    (it detected the panels itself) sees the hold and steps back (`renders.hold_render`)."""
    page = _lock_page(session, page_id)
    page.layout_confidence = round(float(layout_confidence), 3)
    asked = (page.batch.options or {}).get(CHECK_PANELS)
    if page.panel_check is None and asked is not False and layout_confidence < check_below and page.status in ACTIVE:
        page.panel_check = PanelCheck.awaiting
        log_event(session, "page.panel_check", studio_id=page.batch.studio_id, batch_id=page.batch_id,
                  page_id=page_id, data={"reason": "low confidence", "layout_confidence": page.layout_confidence,
                                         "below": check_below})
    session.flush()
    return page.panel_check == PanelCheck.awaiting


def confirm_panels(session: Session, page_id: int, *, user_id: int | None = None) -> Render | None:
    """A person confirmed the boxes of a page held for its panel check: colouring may go on. Returns
    the page's queued render (send it after the commit), or None when it has none (cancelled).
    `IllegalTransition` when the page is not held, or its panels are not detected yet."""
    page = _lock_page(session, page_id)
    if page.panel_check != PanelCheck.awaiting:
        raise IllegalTransition(f"page {page_id} is not waiting for a panel check")
    if not page.panels:
        raise IllegalTransition(f"page {page_id}: its panels are still being detected; confirm them once they are")
    page.panel_check = PanelCheck.confirmed
    session.flush()
    log_event(session, "page.panels_confirmed", studio_id=page.batch.studio_id, batch_id=page.batch_id,
              page_id=page_id, data={"user_id": user_id, "panels": len(page.panels)})
    render = session.get(Render, page.current_render_id) if page.current_render_id else None
    return render if render is not None and render.status == RunStatus.queued else None


def _geometry(row: Panel) -> dict[str, Any]:
    """A live panel as an edit entry that keeps it as it is."""
    return {"id": row.id, **panel_of(row).geometry()}


def merge_panels(session: Session, page_id: int, panel_ids: Sequence[int], *,
                 user_id: int | None = None) -> PanelEdit:
    """Merge two or more of the page's panels into the one box that holds them (an `edit_panels`:
    the merged box is a new panel, re-rendered on a finished page). `InvalidInput` for fewer than
    two ids or an id not on the page."""
    rows = {p.id: p for p in _lock_page(session, page_id).panels}
    ids = list(dict.fromkeys(panel_ids or []))
    if len(ids) < 2 or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise InvalidInput("name at least two panel ids to merge")
    missing = [i for i in ids if i not in rows]
    if missing:
        raise InvalidInput(f"panel {missing[0]} is not on page {page_id}")
    box = merged([panel_of(rows[i]) for i in ids])
    kept = [_geometry(r) for pid, r in rows.items() if pid not in ids]
    return edit_panels(session, page_id, [*kept, {"bbox": list(box.bbox)}], user_id=user_id)


def split_panel(session: Session, page_id: int, panel_id: Any, axis: Any, at: Any, *,
                user_id: int | None = None) -> PanelEdit:
    """Split one of the page's panels in two at page coordinate `at`, along `axis` ('x': a column,
    'y': a row); both parts are new panels (re-rendered on a finished page) of at least
    PANEL_SIDE_MIN pixels. `InvalidInput` for a bad axis or cut, or a panel not on the page."""
    rows = {p.id: p for p in _lock_page(session, page_id).panels}
    if isinstance(panel_id, bool) or panel_id not in rows:
        raise InvalidInput(f"panel {panel_id!r} is not on page {page_id}")
    if isinstance(at, bool) or not isinstance(at, int):
        raise InvalidInput(f"split at must be a whole page coordinate, got {at!r}")
    try:
        parts = split(panel_of(rows[panel_id]), axis, at, PANEL_SIDE_MIN)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    kept = [_geometry(r) for pid, r in rows.items() if pid != panel_id]
    return edit_panels(session, page_id, [*kept, *({"bbox": list(p.bbox)} for p in parts)], user_id=user_id)
