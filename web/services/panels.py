"""A page's panel boxes as a reviewer edits them (move, resize, draw, delete, merge, split), and the
panel check that holds a page before colouring: the edits are `panelpaint.store.panel_edits`',
and the re-renders of changed panels, or the render a confirmed check releases, are sent after
the commit."""
from __future__ import annotations

from typing import Any

from flask_login import current_user

from panelpaint.store import panel_edits
from panelpaint.store.panel_edits import PanelEdit
from panelpaint.store.schema import Page, PanelCheck

from . import db, queue, services
from .batches import panel_data


def check_state(page: Page) -> dict[str, Any]:
    """How sure detection was of the page's layout, and whether its panels await a check."""
    below = services().settings.panel_check_below
    confidence = page.layout_confidence
    return {"layout_confidence": confidence, "panel_check": page.panel_check.value if page.panel_check else None,
            "awaiting_check": page.panel_check == PanelCheck.awaiting, "check_below": below,
            "unsure": confidence is not None and confidence < below}


def page_panels(page: Page) -> dict[str, Any]:
    """The page's boxes in reading order, each with its confidence, and the check's state."""
    return {"page_id": page.id, "width": page.width, "height": page.height,
            "direction": (page.direction or page.batch.direction).value, **check_state(page),
            "panels": [panel_data(p) for p in page.panels]}


def _sent(edit: PanelEdit) -> PanelEdit:
    """Commit the edit, then send what it queued: panel re-renders, and a render its check released."""
    db().commit()
    queue.enqueue([*edit.renders, *([edit.released] if edit.released is not None else [])])
    return edit


def edit(page: Page, panels: Any, confirm: bool = False) -> PanelEdit:
    """Replace the page's boxes (`panel_edits.edit_panels`); with `confirm`, release a held page."""
    return _sent(panel_edits.edit_panels(db(), page.id, panels, user_id=current_user.id, confirm=confirm))


def merge(page: Page, panel_ids: Any) -> PanelEdit:
    """Merge two or more of the page's panels into one box."""
    return _sent(panel_edits.merge_panels(db(), page.id, panel_ids, user_id=current_user.id))


def split(page: Page, panel_id: Any, axis: Any, at: Any) -> PanelEdit:
    """Split one of the page's panels in two at page coordinate `at` ('x': a column, 'y': a row)."""
    return _sent(panel_edits.split_panel(db(), page.id, panel_id, axis, at, user_id=current_user.id))


def confirm(page: Page) -> None:
    """Confirm a held page's boxes as they are: its render is sent (`IllegalTransition` when the
    page is not held, or its panels are not detected yet)."""
    released = panel_edits.confirm_panels(db(), page.id, user_id=current_user.id)
    db().commit()
    queue.enqueue([released] if released is not None else [])


def summary(edit: PanelEdit) -> str:
    """What an edit did, for the reviewer."""
    parts = [f"{len(ids)} {what}" for ids, what in ((edit.changed, "changed"), (edit.added, "added"),
                                                   (edit.removed, "removed")) if ids]
    text = "Panels saved" + (f" ({', '.join(parts)})" if parts else " (nothing changed)") + "."
    if edit.renders:
        text += f" {len(edit.renders)} panel re-render(s) queued; the other panels keep their colours."
    if edit.released is not None:
        text += " Panels confirmed: colouring goes on."
    return text
