"""What the workers read from and write to the job store, as plain frozen dataclasses.

No ORM row leaves these functions, so `worker/` never touches the schema. Like every store
function they take a `Session` first and flush but never commit (the caller owns the transaction).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.flats import Background
from panelpaint.panels import Direction, Panel
from panelpaint.store import batches, panel_edits, renders, uploads
from panelpaint.store.errors import IllegalTransition, NotFound, StaleAttempt
from panelpaint.store.schema import Page, Render, RunStatus, StyleReference
from panelpaint.store.schema import Panel as PanelRow


@dataclass(frozen=True)
class StoredPanel:
    """A panel of a page: its geometry (`panelpaint.panels.Panel`) and its own style and hints."""

    id: int
    panel: Panel
    style_id: int | None
    hints: list[dict]

    @property
    def order(self) -> int:
        return self.panel.order


@dataclass(frozen=True)
class PageData:
    """A page as a worker needs it, with its batch's settings and its panels in reading order."""

    id: int
    position: int
    name: str
    source_key: str | None
    direction: Direction  # the page's own, else its batch's
    style_id: int | None  # the page's own style
    default_style_id: int | None  # the batch's
    options: dict[str, Any]  # the batch's (work_size, formats, ...)
    current_render_id: int | None
    prepared: dict[str, Any] | None  # the inputs cut ahead: {"key", "work_size", "panels"}
    panels: tuple[StoredPanel, ...]
    has_thumbnails: bool = False  # of its line art (made by ingest)

    def panel_dicts(self) -> list[dict]:
        """The panels' geometry in reading order, as `batches.panel_dicts` gives it."""
        return [p.panel.geometry() for p in self.panels]

    def current_cut(self, work_size: int) -> dict[str, Any] | None:
        """The inputs cut ahead, while they are for these panels at this work size; else None."""
        cut = self.prepared or {}
        panels = cut.get("panels")
        if panels and cut.get("work_size") == work_size and panels == self.panel_dicts():
            return dict(cut)
        return None


@dataclass(frozen=True)
class StyleData:
    """A stored style reference: its image's storage key, its (possibly edited) palette and flats options."""

    id: int
    image_key: str
    palette: list | None
    snap: bool
    background: Background


@dataclass(frozen=True)
class FinishedResult:
    """A render that succeeded with a flats layer: what a panel re-render is merged into."""

    render_id: int
    flats_key: str
    shading_key: str | None


@dataclass(frozen=True)
class RunningAttempt:
    """A render while the attempt a worker holds is its current, running one."""

    render_id: int
    attempt: int
    page_id: int
    task_id: str | None


@dataclass(frozen=True)
class TaskRef:
    """A render or an upload and the id of its Celery task (for sending it again)."""

    id: int
    task_id: str | None


def _stored_panel(row: PanelRow) -> StoredPanel:
    return StoredPanel(row.id, batches.panel_of(row), row.style_id, [dict(h) for h in row.hints or []])


def page(session: Session, page_id: int) -> PageData | None:
    """The page, or None when it does not exist."""
    row = session.get(Page, page_id)
    if row is None:
        return None
    batch = row.batch
    return PageData(
        id=row.id, position=row.position, name=row.source_name, source_key=row.source_key,
        direction=row.direction or batch.direction, style_id=row.style_id,
        default_style_id=batch.default_style_id, options=dict(batch.options or {}),
        current_render_id=row.current_render_id, prepared=dict(row.prepared) if row.prepared else None,
        panels=tuple(_stored_panel(p) for p in sorted(row.panels, key=lambda p: p.position)),
        has_thumbnails=bool(row.thumbnails),
    )


def styles(session: Session, style_ids: Iterable[int]) -> dict[int, StyleData]:
    """The stored styles with these ids (an id that no longer exists is left out)."""
    out = {}
    for sid in set(style_ids):
        row = session.get(StyleReference, sid)
        if row is not None:
            out[sid] = StyleData(row.id, row.image_key, row.palette, row.snap_palette, row.background)
    return out


def finished_result(session: Session, render_id: int | None) -> FinishedResult | None:
    """The render's result if it succeeded with a flats layer, else None."""
    row = session.get(Render, render_id) if render_id else None
    if row is None or row.status != RunStatus.succeeded or not (row.outputs or {}).get("flats"):
        return None
    return FinishedResult(row.id, row.outputs["flats"], row.outputs.get("shading"))


def start_finishing(session: Session, render_id: int, attempt: int) -> RunningAttempt | None:
    """`renders.start_finishing`: the render while `attempt` is its running, handed-off attempt (now
    finishing, its lease renewed); None when it was fenced out, cancelled or completed."""
    try:
        row = renders.start_finishing(session, render_id, attempt)
    except (StaleAttempt, NotFound):
        return None
    return RunningAttempt(row.id, row.attempt, row.page_id, row.task_id)


def running_attempt(session: Session, render_id: int, attempt: int) -> RunningAttempt | None:
    """The render while `attempt` is its running attempt; None when it was fenced out, cancelled or completed."""
    row = session.get(Render, render_id)
    if row is None or row.attempt != attempt or row.status != RunStatus.running:
        return None
    return RunningAttempt(row.id, row.attempt, row.page_id, row.task_id)


def keep_detected_panels(session: Session, page_id: int, panels: Iterable[Mapping[str, Any]], *,
                         check_below: float = 0.0) -> list[dict]:
    """Store the panels a worker detected ({order, bbox, polygon, confidence}) unless the page has
    panels already or they have renders or reviews by now; returns the page's panels afterwards, as
    dicts. Once stored, a layout less sure than `check_below` (its weakest panel) holds the page
    for a panel check (`panel_edits.hold_for_check`). Raises `InvalidInput` (nothing stored) when
    they do not fit the page (its recorded size is wrong)."""
    panels = list(panels)
    has = session.scalar(sa.select(sa.func.count(PanelRow.id)).where(PanelRow.page_id == page_id))
    if not has and panels:
        try:
            with session.begin_nested():
                batches.set_panels(session, page_id, panels)
        except IllegalTransition:
            pass  # the page's panels have renders or reviews by now: they stay
        else:
            confidence = min(float(p.get("confidence", 1.0)) for p in panels)
            panel_edits.hold_for_check(session, page_id, confidence, check_below)
    return batches.panel_dicts(session.get(Page, page_id))


def held(session: Session, page_id: int) -> bool:
    """True while the page waits for a person to check its panels (its render is not claimed)."""
    return renders.held(session, page_id)


def record_cut(session: Session, page_id: int, key: str, work_size: int, panels: list[dict]) -> bool:
    """Record the inputs cut ahead for `panels` at `work_size` (stored under `key`), only while
    those are still the page's panels (an edit meanwhile wins); True when recorded."""
    return batches.set_prepared(session, page_id, {"key": key, "work_size": work_size, "panels": panels},
                                panels=panels)


def record_thumbnails(session: Session, page_id: int, keys: dict[str, str], *, only_if_missing: bool = False) -> None:
    """Record the thumbnails of a page's line art ({kind: storage key}, `panelpaint.thumbnails`);
    `only_if_missing` leaves a page that has some as it is."""
    row = session.get(Page, page_id, with_for_update=True if only_if_missing else None)
    if row is not None and not (only_if_missing and row.thumbnails):
        row.thumbnails = dict(keys)


def fail_attempt(session: Session, render_id: int, attempt: int, error: str, retryable: bool, *,
                 max_attempts: int) -> bool:
    """Record that `attempt` failed (`renders.fail_render`); True when the render went back to the
    queue (retryable, attempts left). Raises `StaleAttempt` when the attempt was fenced out."""
    render = renders.fail_render(session, render_id, attempt, error, retryable, max_attempts=max_attempts)
    return render.status == RunStatus.queued


def stalled_uploads(session: Session, seconds: float) -> list[TaskRef]:
    """`uploads.stalled`: unfinished uploads without progress for `seconds`."""
    return [TaskRef(u.id, u.task_id) for u in uploads.stalled(session, seconds)]

