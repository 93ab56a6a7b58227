"""Re-rendering what reviewers rejected in a batch, in one action: each rejected page as a whole and
each rejected panel of the other pages on its own, with another style (and so its colour key),
seed or hints."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session

from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.renders import queue_render
from panelpaint.store.reviews import rejected_panels
from panelpaint.store.schema import Batch, Page, Panel, Render, ReviewStatus, RunStatus
from panelpaint.store.styles import require_style


class Hints(str, enum.Enum):
    """What becomes of the colour hints: each page and panel keeps those it was coloured with, or none."""

    keep = "keep"
    clear = "clear"


@dataclass
class Rework:
    """What one "re-render the rejected" action queued, and what it passed by and why."""

    renders: list[Render] = field(default_factory=list)
    skipped: list[tuple[Page, Panel | None, str]] = field(default_factory=list)


def rejected_count(batch: Batch) -> int:
    """How many pages and panels of the batch are rejected (a rejected page counts once), in one
    query whatever the batch's size (the batch page shows it on every poll)."""
    finished = (Page.batch_id == batch.id, Page.status == RunStatus.succeeded)
    pages = sa.select(sa.func.count()).select_from(Page).where(*finished, Page.review_status == ReviewStatus.rejected)
    panels = (sa.select(sa.func.count()).select_from(Panel).join(Page, Panel.page_id == Page.id)
              .where(*finished, Page.review_status != ReviewStatus.rejected,
                     Panel.retired_at.is_(None), Panel.review_status == ReviewStatus.rejected))
    return object_session(batch).scalar(sa.select(pages.scalar_subquery() + panels.scalar_subquery()))


def rerender_rejected(
    session: Session,
    studio_id: int,
    batch_id: int,
    style_id: int | None = None,
    seed: int | None = None,
    hints: Hints | str = Hints.keep,
    *,
    user_id: int | None = None,
) -> Rework:
    """Queue a new render of every rejected page and every rejected panel of the batch's finished
    pages (their reviews go back to pending, as for any re-render); the caller commits, then
    enqueues `Rework.renders`. A page or panel with a render still queued or running is passed by
    (in `Rework.skipped`, with the reason). Several rejected panels of one page are queued each on
    its own: finishing merges each into the page's result as it is then, so none is lost.

    `NotFound` for another studio's batch or style; `InvalidInput` for a bad seed or hints;
    `IllegalTransition` for a cancelled batch or when nothing in it is rejected.
    """
    try:
        hints = Hints(hints)
    except ValueError:
        raise InvalidInput(f"hints must be {' or '.join(h.value for h in Hints)}, not {hints!r}") from None
    batch = session.get(Batch, batch_id)
    if batch is None or batch.studio_id != studio_id:
        raise NotFound(f"batch {batch_id} does not exist")
    if batch.cancelled:
        raise IllegalTransition(f"batch {batch_id} is cancelled")
    require_style(session, studio_id, style_id)
    out = Rework()
    for page in batch.pages:
        if page.status != RunStatus.succeeded:
            continue
        if page.review_status == ReviewStatus.rejected:
            targets: list[Panel | None] = [None]
        else:
            targets = list(rejected_panels(page))
        for panel in targets:
            kept = _hints_of(session, page, panel) if hints == Hints.keep else []
            try:
                out.renders.append(queue_render(session, page.id, panel.id if panel else None, style_id, seed, kept,
                                                user_id=user_id, reason="rerender"))
            except IllegalTransition as exc:  # a render of it is still queued or running
                out.skipped.append((page, panel, str(exc)))
    if not out.renders and not out.skipped:
        raise IllegalTransition(f"nothing in batch {batch_id} is rejected")
    log_event(session, "batch.rerender_rejected", studio_id=studio_id, batch_id=batch_id,
              data={"user_id": user_id, "style_id": style_id, "seed": seed, "hints": hints.value,
                    "renders": [r.id for r in out.renders], "skipped": len(out.skipped)})
    return out


def _hints_of(session: Session, page: Page, panel: Panel | None) -> list | None:
    """The hints a page or panel was last coloured with (None: the panel's own, `queue_render`'s default)."""
    if panel is not None:
        return None
    last = session.scalar(sa.select(Render).where(Render.page_id == page.id, Render.panel_id.is_(None),
                                                  Render.variant_set_id.is_(None))
                          .order_by(Render.version.desc()).limit(1))
    return list(last.hints or []) if last is not None else []
