"""What the render of one claimed page needs, loaded from the job store and storage, and made ready for the network.

`load_inputs` reads the page, its panels and styles (as plain data) and decodes the page, or loads
its panels as the io worker cut them ahead (`page.prepared`). `prepare` turns them into the
network's inputs; for a panel re-render over a finished page, only that panel's, with the
`PanelMerge` that tells finishing where it goes.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from PIL import Image
from sqlalchemy.orm import Session

from panelpaint import pages
from panelpaint.images import ImageError, open_image
from panelpaint.palette import Palette
from panelpaint.panels import Panel
from panelpaint.settings import Settings
from panelpaint.store import renders, work
from panelpaint.store.errors import NotFound
from worker.faults import BadInput, patiently
from worker.handoff import PanelMerge, load_cut
from worker.resources import Resources

log = logging.getLogger(__name__)


@dataclass
class RenderInputs:
    """A claimed page's inputs, read while the session was open and held after it closed."""

    name: str  # the page's source name
    work_size: int
    style: pages.Style  # the page's style
    panels: list[Panel] | None  # the stored panels, reading order (None: detect them)
    panel_styles: dict[int, pages.Style] = field(default_factory=dict)  # by panel order
    panel_hints: dict[int, list[dict]] = field(default_factory=dict)  # by panel order, page pixels
    page: Image.Image | None = None  # the decoded page; None when its panels were cut ahead
    cut: pages.PreparedPage | None = None  # the panels cut ahead by the io worker
    load_seconds: float = 0.0  # decoding the page, or loading the cut
    panel: Panel | None = None  # a panel re-render: the panel to colour
    base: int | None = None  # ...and the page's finished result to merge it into (None: there is none)


def work_size(options: dict, settings: Settings) -> int:
    """The long side a batch's panels are coloured at: its own option, else the settings'."""
    return int((options or {}).get("work_size") or settings.effective_work_size())


def open_stored(res: Resources, settings: Settings, key: str | None, what: str) -> Image.Image:
    """A stored image, decoded; `BadInput` when it is missing or not a usable image."""
    if not key:
        raise BadInput(f"{what}: nothing stored")
    try:
        data = res.storage.read_bytes(key)
    except NotFound:
        raise BadInput(f"{what}: stored file {key[:12]}… is missing") from None
    try:
        return open_image(data, name=what, max_pixels=settings.max_image_pixels)
    except ImageError as exc:
        raise BadInput(str(exc)) from None


def _style(data: work.StyleData, image: Image.Image, background: str | None = None) -> pages.Style:
    """The pipeline's view of a stored style: the image, the (possibly edited) palette and the flats
    options (`background`, when given, is the batch's choice over the style's own)."""
    palette = None
    if data.palette:
        try:
            palette = Palette.from_json(data.palette)
        except ValueError as exc:  # the store validates palettes; should one not parse, use the image's own
            log.warning("style %s: stored palette unusable (%s); extracting one from the image", data.id, exc)
    return pages.Style(image, palette=palette, snap=data.snap, background=background or data.background)


def load_inputs(res: Resources, settings: Settings, claim: renders.Claim,
                style_cache: dict[tuple[int, str | None], pages.Style]) -> RenderInputs:
    """Page image (or its cut panels), styles and stored panels of a claimed render.

    `style_cache` keeps decoded styles by id (and the batch's background choice) across the pages
    of one render task, so pages with the same style share one image object (the colorizer
    encodes each object once). A panel re-render colours its panel with the render's style, seed
    and hints, over the page's style.
    """
    size = work_size(claim.options, settings)

    def read(s: Session) -> tuple:
        base = panel_order = None
        page = work.page(s, claim.page_id)
        if page is None:
            raise BadInput(f"page {claim.page_id} no longer exists")
        panel_style_ids = {p.order: p.style_id for p in page.panels if p.style_id}
        page_style_id = claim.style_id
        if claim.panel_id is not None:
            panel_order = next((p.order for p in page.panels if p.id == claim.panel_id), None)
            if panel_order is None:
                raise BadInput(f"panel {claim.panel_id} is no longer on page {claim.page_id}")
            page_style_id = page.style_id or page.default_style_id or claim.style_id
            if claim.style_id is not None:
                panel_style_ids[panel_order] = claim.style_id
            found = work.finished_result(s, page.current_render_id)
            base = found.render_id if found is not None else None
        stored_styles = work.styles(s, {page_style_id, *panel_style_ids.values()} - {None})
        return page, base, panel_order, panel_style_ids, page_style_id, stored_styles

    # A short database outage waits here: the claimed attempt is kept, not charged again.
    page, base, panel_order, panel_style_ids, page_style_id, stored_styles = patiently(
        res, settings.task_soft_time_limit, read)
    if claim.style_id is None or page_style_id is None:
        raise BadInput("no style reference: choose one for the page or set the batch's default")
    panels = [p.panel for p in page.panels]
    panel_hints = {p.order: list(p.hints) for p in page.panels if p.hints}
    cut = page.current_cut(size)
    t = time.perf_counter()
    prepared = None
    if cut is not None and panel_order is None:
        try:
            prepared = load_cut(res.storage, cut["key"])
        except (NotFound, OSError, ValueError, KeyError) as exc:
            log.warning("page %s: the inputs cut ahead cannot be read (%s); cutting them again", claim.page_id, exc)
    # With the inputs cut ahead (by the io worker that detected the panels) the page is not decoded here.
    page_img = None if prepared is not None else open_stored(res, settings, claim.source_key, page.name)
    load = time.perf_counter() - t
    background = (claim.options or {}).get("background")  # the batch's, over each style's own
    for sid in {page_style_id, *panel_style_ids.values()}:
        if (sid, background) not in style_cache:
            data = stored_styles[sid]
            same = next((s for (i, _), s in style_cache.items() if i == sid), None)
            image = same.image if same is not None else open_stored(res, settings, data.image_key, f"style {sid}")
            style_cache[sid, background] = _style(data, image, background)
    if panel_order is not None:
        # A panel re-render's hints (the panel's own unless the reviewer placed new ones) are its alone.
        panel_hints[panel_order] = list(claim.hints)
    else:
        # Render-level hints are in page pixels: give each to the panel that contains it.
        for hint in claim.hints:
            for p in panels:
                x0, y0, x1, y1 = p.box()
                if x0 <= hint.get("x", -1) < x1 and y0 <= hint.get("y", -1) < y1:
                    panel_hints.setdefault(p.order, []).append(hint)
                    break
    return RenderInputs(
        name=page.name, work_size=size, style=style_cache[page_style_id, background], panels=panels or None,
        panel_styles={order: style_cache[sid, background] for order, sid in panel_style_ids.items()},
        panel_hints=panel_hints, page=page_img, cut=prepared, load_seconds=load,
        panel=next((p for p in panels if p.order == panel_order), None), base=base,
    )


def prepare(claim: renders.Claim, inputs: RenderInputs) -> tuple[pages.PreparedPage, PanelMerge | None, str | None]:
    """The network's inputs for a claimed render, the merge finishing must make (a panel
    re-render over a finished page: only that panel is prepared), and a note for the render
    (a panel re-render without a finished page to merge into colours the whole page)."""
    panel, base = inputs.panel, inputs.base
    common = dict(direction=claim.direction, panel_hints=inputs.panel_hints, work_size=inputs.work_size)
    if inputs.cut is not None:  # a page render whose panels were cut ahead
        return inputs.cut.assign(inputs.style, inputs.panel_styles, inputs.panel_hints), None, None
    if panel is not None and base is not None:
        style = inputs.panel_styles.get(panel.order, inputs.style)
        prepared = pages.prepare_page(inputs.page, style, panels=[panel], **common)
        return prepared, PanelMerge(base, panel, list(inputs.panels or [])), None
    prepared = pages.prepare_page(inputs.page, inputs.style, panels=inputs.panels,
                                  panel_styles=inputs.panel_styles, **common)
    if panel is not None:
        return prepared, None, ("panel re-render: the page has no finished result to merge into, "
                                "so the whole page was coloured")
    return prepared, None, None
