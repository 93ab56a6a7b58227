"""The page pipeline: panels -> one batched colouring call (the draft) -> flats at native resolution -> outputs.

`prepare_page`, `colour_pages` (the GPU's part) and `finish_page` run where each is cheapest;
`render_page` runs all three in one process and `colour_image` colours one picture the same way.
The colorizer is any `PanelColorizer`, so this module never imports torch."""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import cv2
import numpy as np
from PIL import Image

from panelpaint import export
from panelpaint.composite import multiply, normalize_lines, paste_panel, upsample_colors
from panelpaint.flats import Background, apply_shading, finish_panel
from panelpaint.formats import ALL as FORMATS
from panelpaint.hints import hint_image, parse_color, validate_hints
from panelpaint.images import Source, open_image, to_gray
from panelpaint.palette import Palette, extract_palette
from panelpaint.panels import Direction, Panel, detect_panels, order_panels, rectangle
from panelpaint.reference_match import Reference, match


class Cancelled(Exception):
    """Raised by `render_page` when `should_stop()` turns true between stages or panels."""


@runtime_checkable
class PanelColorizer(Protocol):
    """What the page pipeline needs from a colouring model (e.g. `models.colorizer.Colorizer`)."""

    model_version: str

    def colorize_batch(
        self,
        sketches: list[Image.Image],
        styles: list[Image.Image],
        hints: list[Image.Image | None] | None = None,
        size: int = 512,
        seed: int | None = None,
    ) -> list[Image.Image]:
        """One RGB image per sketch, at that sketch's own size; hints are RGBA (alpha > 0 = colour dot)."""
        ...


@dataclass(eq=False)
class Style:
    """A style reference as the pipeline uses it: the painting, its colour key, and how flats use them."""

    image: Image.Image
    palette: Palette | None = None  # the style's own (e.g. edited) palette; None: extracted from `image`
    snap: bool = True  # flats take only palette colours (the same character keeps its colours everywhere)
    background: Background = Background.PAPER

    def __post_init__(self) -> None:
        # The same object back when it is RGB already: colorizers encode each style object once.
        if self.image.mode != "RGB":
            self.image = self.image.convert("RGB")
        self.background = Background(self.background)

    @cached_property
    def reference(self) -> Reference:
        """The painting prepared for reference matching (`panelpaint.reference_match`), once per style."""
        return Reference.of(np.asarray(self.image))

    @cached_property
    def colour_key(self) -> Palette:
        """The palette flats snap to: the style's own, else k-means of the painting."""
        return self.palette if self.palette is not None else extract_palette(np.asarray(self.image))

    @classmethod
    def of(cls, style: "Style | Image.Image") -> "Style":
        return style if isinstance(style, Style) else cls(style)


class Shading(str, enum.Enum):
    """What becomes of the network's light and shade inside each region (`panelpaint.flats.shading`)."""

    OFF = "off"  # no shading layer
    LAYER = "layer"  # a hidden multiply layer in the PSD/ORA for the colourist; the composite is flat
    ON = "on"  # the layer is shown and applied in the composite


@dataclass(frozen=True)
class FinishOptions:
    """How the draft becomes the page: flats (the default) or the draft itself upsampled along the
    lines (`flats=False`, kept to compare with), and the shading; `seed` samples each region's
    palette colour among the nearest few (a variant) instead of taking the nearest.

    Flat composites measured better than shaded ones with every weights file so far
    (docs/quality.md), so by default the shading is a hidden layer a colourist can turn on."""

    flats: bool = True
    shading: Shading = Shading.LAYER
    seed: int | None = None
    # Where a panel's reference shows the same drawing, its regions take the reference's colours
    # (`panelpaint.reference_match`). A variant (`seed`) explores the palette instead.
    match_reference: bool = True


@dataclass
class PageResult:
    """A coloured page at native resolution and how long each stage took (seconds)."""

    composite: Image.Image  # RGB: flats, shaded, with the line art multiplied on top
    flats: Image.Image  # RGB: one colour per region, no lines, white outside the panels
    lines: Image.Image  # L: the original line art, unchanged
    panels: list[Panel]
    shading: Image.Image | None = None  # L: multiply layer over the flats (255 = no change)
    shading_shown: bool = False  # whether the composite (and the layered files) show the shading
    direction: Direction = Direction.ltr
    model_version: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.composite.size

    def panels_json(self) -> dict:
        """The panel geometry as stored in the job store and written to panels.json."""
        w, h = self.size
        return {
            "width": w,
            "height": h,
            "direction": self.direction,
            "model_version": self.model_version,
            "panels": [p.to_dict() for p in self.panels],
        }


def load_page(source: Source, *, name: str | None = None, max_pixels: int | None = None) -> Image.Image:
    """Decode a page safely (see `panelpaint.images.open_image`); raises `ImageError`."""
    return open_image(source, name=name, max_pixels=max_pixels)


def detect(page: Image.Image, direction: Direction = Direction.ltr, **options) -> list[Panel]:
    """Panels of a page in reading order ("ltr", or "rtl" for manga); options go to `detect_panels`."""
    return detect_panels(to_gray(page), direction, **options)


def crop_box(panel: Panel, page_size: tuple[int, int], margin: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the panel's box grown by `margin` pixels, clipped to the page."""
    x0, y0, x1, y1 = panel.box()
    w, h = page_size
    return max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)


def work_dimensions(size: tuple[int, int], work_size: int) -> tuple[int, int]:
    """The crop's size scaled (up or down) so its long side is `work_size`, rounded to multiples of 8."""
    w, h = size
    scale = work_size / max(w, h)
    return max(8, int(round(w * scale / 8)) * 8), max(8, int(round(h * scale / 8)) * 8)


def model_input(lines: np.ndarray, box: tuple[int, int, int, int], work_size: int,
                mask: np.ndarray | None = None) -> Image.Image:
    """A normalised grey sketch of the page region `box`, resized so its long side is `work_size`.

    With a crop-sized `mask`, everything outside it (neighbouring panels inside the margin) is
    blanked to paper so the network sees only this panel.
    """
    x0, y0, x1, y1 = box
    crop = normalize_lines(lines[y0:y1, x0:x1])
    if mask is not None:
        crop[mask == 0] = 255
    dims = work_dimensions((x1 - x0, y1 - y0), work_size)
    return Image.fromarray(cv2.resize(crop, dims, interpolation=cv2.INTER_AREA), "L")


def _check(should_stop: Callable[[], bool] | None, where: str) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled(f"cancelled {where}")


@dataclass
class PreparedPage:
    """A page made ready for the network: the panels' sketches, styles and hints at work size, and
    the geometry that `finish_page` needs to bring their colours back at native resolution.

    `lines` is the page's grey line art; a worker drops it before handing the page on (the next
    stage decodes the page again rather than moving its pixels through storage).
    """

    size: tuple[int, int]
    panels: list[Panel]
    boxes: list[tuple[int, int, int, int]]
    sketches: list[Image.Image]
    styles: list[Image.Image]
    hints: list[Image.Image | None]
    direction: Direction = Direction.ltr
    lines: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    finishes: list["PanelFinish"] = field(default_factory=list)
    # Each panel's style reference prepared for matching (panels that share a style share one).
    references: list[Reference] = field(default_factory=list)

    def geometry(self) -> dict:
        """The JSON-able part that travels with the colours to the finishing stage."""
        return {"size": list(self.size), "direction": self.direction,
                "panels": [p.to_dict() for p in self.panels], "boxes": [list(b) for b in self.boxes],
                "finishes": [f.to_json() for f in self.finishes]}

    def assign(self, style: Style | Image.Image, panel_styles: dict[int, Style | Image.Image] | None = None,
               panel_hints: dict[int, list[dict]] | None = None) -> "PreparedPage":
        """Give each panel its style reference and its hint dots (keyed by panel `order`; dots in
        page pixels). These change from one render of a page to the next; the cut panels do not,
        so a cut made ahead of the render (`cut_panels`) is reused with new ones."""
        panel_styles = {k: Style.of(v) for k, v in (panel_styles or {}).items()}
        panel_hints = {k: validate_hints(v) for k, v in (panel_hints or {}).items()}
        style = Style.of(style)
        chosen = [panel_styles.get(p.order, style) for p in self.panels]
        self.styles = [s.image for s in chosen]
        self.references = [s.reference for s in chosen]
        self.hints = [hint_image(panel_hints.get(p.order, []), box, sketch.size)
                      for p, box, sketch in zip(self.panels, self.boxes, self.sketches)]
        self.finishes = [PanelFinish(s.colour_key if s.snap else None, s.background, panel_hints.get(p.order, []))
                         for p, s in zip(self.panels, chosen)]
        return self


@dataclass(frozen=True)
class PanelFinish:
    """What one panel's flats need beyond its draft: the palette to snap to (None: the draft's own
    colours), what its background becomes, and its hint dots ({x, y, color}, page pixels)."""

    palette: Palette | None = None
    background: Background = Background.PAPER
    hints: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"palette": self.palette.to_json() if self.palette is not None else None,
                "background": Background(self.background).value, "hints": list(self.hints)}

    @classmethod
    def from_json(cls, d: dict) -> "PanelFinish":
        palette = d.get("palette")
        return cls(Palette.from_json(palette) if palette else None, Background(d.get("background", "paper")),
                   validate_hints(d.get("hints") or []))

    def crop_hints(self, box: tuple[int, int, int, int]) -> list[tuple[float, float, tuple[int, int, int]]]:
        """The dots in the crop's pixels, as `panelpaint.flats` takes them."""
        x0, y0 = box[0], box[1]
        return [(d["x"] - x0, d["y"] - y0, parse_color(d["color"])) for d in self.hints]


def cut_panels(lines: np.ndarray, panels: list[Panel], work_size: int = 512, margin: int | None = None,
               ) -> tuple[list[tuple[int, int, int, int]], list[Image.Image]]:
    """Each panel's crop box (its box grown by `margin`, default 1 % of the short side) and its
    normalised sketch at work size, with the neighbouring panels in the margin blanked to paper."""
    h, w = lines.shape
    if margin is None:
        margin = max(8, min(w, h) // 100)
    boxes, sketches = [], []
    for p in panels:
        box = crop_box(p, (w, h), margin)
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            raise ValueError(f"panel {p.order} ({p.bbox}) lies outside the {w}x{h} page")
        mask = p.mask((box[2] - box[0], box[3] - box[1]), (box[0], box[1]))
        boxes.append(box)
        sketches.append(model_input(lines, box, work_size, mask))
    return boxes, sketches


def prepare_page(
    page: Image.Image,
    style: Style | Image.Image,
    *,
    panels: list[Panel] | list[dict] | None = None,
    direction: Direction = Direction.ltr,
    panel_styles: dict[int, Style | Image.Image] | None = None,
    panel_hints: dict[int, list[dict]] | None = None,
    work_size: int = 512,
    margin: int | None = None,
) -> PreparedPage:
    """Find or validate the panels of a decoded page, and cut the network's inputs.

    `panels` (Panel objects or their dicts, e.g. edited by a user) skip detection; they keep their
    `order` unless two share one, then they are re-ordered for `direction`. `panel_styles` /
    `panel_hints` are keyed by panel `order`: a style override, and hint dots {x, y, color
    "#rrggbb"} in page pixels. Raises `ValueError` for malformed hints or panels.
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    lines = to_gray(page)
    h, w = lines.shape
    if panels is None:
        panels = detect_panels(lines, direction)
    else:
        # Copies (or dicts as stored in the job store), validated; the caller's list is not changed.
        panels = [Panel.from_dict(p if isinstance(p, dict) else p.to_dict()) for p in panels]
        if len({p.order for p in panels}) < len(panels):
            panels = order_panels(panels, direction)
        panels.sort(key=lambda p: p.order)
    boxes, sketches = cut_panels(lines, panels, work_size, margin)
    prepared = PreparedPage((w, h), panels, boxes, sketches, [], [], direction, lines, timings)
    prepared.assign(style, panel_styles, panel_hints)
    timings["panels"] = time.perf_counter() - t
    return prepared


def colour_pages(pages: list[PreparedPage], colorizer: PanelColorizer, *, work_size: int = 512,
                 seed: int | None = None) -> list[list[Image.Image]]:
    """The colours of every panel of `pages` from ONE `colorize_batch` call (the colorizer groups
    the panels by size into forward passes), split back per page. Each page's `timings["model"]`
    gets its share of the call's time, by panel count."""
    sketches = [s for p in pages for s in p.sketches]
    styles = [s for p in pages for s in p.styles]
    hints = [x for p in pages for x in p.hints]
    t = time.perf_counter()
    colours = colorizer.colorize_batch(
        sketches, styles, hints if any(x is not None for x in hints) else None, size=work_size, seed=seed
    ) if sketches else []
    took = time.perf_counter() - t
    if len(colours) != len(sketches):
        raise RuntimeError(f"colorizer returned {len(colours)} images for {len(sketches)} panels")
    out, start = [], 0
    for p in pages:
        n = len(p.sketches)
        out.append(list(colours[start:start + n]))
        start += n
        p.timings["model"] = took * n / max(1, len(sketches))
    return out


def finish_page(
    lines: np.ndarray,
    panels: list[Panel],
    boxes: list[tuple[int, int, int, int]],
    colours: list[Image.Image] | list[np.ndarray],
    *,
    finishes: list[PanelFinish] | None = None,
    references: list[Reference | None] | None = None,
    options: FinishOptions = FinishOptions(),
    direction: Direction = Direction.ltr,
    model_version: str = "",
    timings: dict[str, float] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_panel: Callable[[int, int], None] | None = None,
) -> PageResult:
    """Bring each panel's draft (work size) to native resolution as flats cut from the line art
    (`panelpaint.flats.finish_panel`: a colour per region, the palette, paper, hints, shading),
    paste them inside the panel polygons on white paper, and multiply the lines on top.

    `finishes` gives each panel its palette, background and hints (default: the draft's colours, a
    paper background, no hints); `references` each panel's style reference, matched with its line
    art (`FinishOptions.match_reference`). `should_stop()` is checked before every panel (raises
    `Cancelled`); `on_panel(done, total)` reports progress as panels are finished.
    """
    timings = dict(timings or {})
    h, w = lines.shape
    finishes = finishes if finishes is not None else [PanelFinish() for _ in panels]
    if not len(panels) == len(boxes) == len(colours) == len(finishes):
        raise ValueError(f"{len(panels)} panels, {len(boxes)} boxes, {len(colours)} colour images and "
                         f"{len(finishes)} finishes do not match")
    flats = np.full((h, w, 3), 255, np.uint8)
    shading = Shading(options.shading)
    shade = np.full((h, w), 255, np.uint8) if options.flats and shading is not Shading.OFF else None
    references = references if references is not None else [None] * len(panels)
    if len(references) != len(panels):
        raise ValueError(f"{len(panels)} panels but {len(references)} references")
    rng = np.random.default_rng(options.seed) if options.seed is not None else None
    matching = (options.flats and options.match_reference and rng is None
                and any(r is not None for r in references))
    timings["flats"] = timings["compositing"] = 0.0
    if matching:
        timings["matching"] = 0.0
    for i, (panel, box, colour, finish, ref) in enumerate(zip(panels, boxes, colours, finishes, references)):
        _check(should_stop, f"at panel {i + 1} of {len(panels)}")
        x0, y0, x1, y1 = box
        t = time.perf_counter()
        rgb = np.asarray(colour.convert("RGB")) if isinstance(colour, Image.Image) else colour
        crop = lines[y0:y1, x0:x1]
        mask = panel.mask((x1 - x0, y1 - y0), (x0, y0))
        if options.flats:
            matched = None
            if matching and ref is not None:
                # The panel alone: its neighbours in the crop's margin would not be in the reference.
                matched = match(np.where(mask > 0, crop, 255).astype(np.uint8), ref)
                matched_at = time.perf_counter()
                timings["matching"] += matched_at - t
                t = matched_at  # "flats" below is the rest
            done = finish_panel(rgb, crop, palette=finish.palette, hints=finish.crop_hints(box),
                                background=finish.background, shading=shade is not None, rng=rng,
                                matched=matched)
            native = done.flats
            if shade is not None and done.shading is not None:
                paste_panel(shade, done.shading, mask, (x0, y0))
        else:
            native = upsample_colors(rgb, crop)
        t2 = time.perf_counter()
        paste_panel(flats, native, mask, (x0, y0))
        timings["compositing"] += time.perf_counter() - t2
        timings["flats"] += t2 - t
        if on_panel is not None:
            on_panel(i + 1, len(panels))
    t = time.perf_counter()
    shown = shade is not None and shading is Shading.ON
    composite = compose(flats, shade if shown else None, lines)
    timings["compositing"] += time.perf_counter() - t
    return PageResult(
        composite=Image.fromarray(composite, "RGB"),
        flats=Image.fromarray(flats, "RGB"),
        lines=Image.fromarray(lines, "L"),
        panels=list(panels),
        shading=Image.fromarray(shade, "L") if shade is not None else None,
        shading_shown=shown,
        direction=direction,
        model_version=model_version,
        timings=timings,
    )


def compose(flats: np.ndarray, shading: np.ndarray | None, lines: np.ndarray) -> np.ndarray:
    """The page as a reader of the layered file sees it: flats, times the shading (when shown), times
    the lines."""
    return multiply(flats if shading is None else apply_shading(flats, shading), lines)


def render_page(
    page: Image.Image | Source,
    style: Style | Image.Image,
    colorizer: PanelColorizer,
    *,
    panels: list[Panel] | list[dict] | None = None,
    direction: Direction = Direction.ltr,
    panel_styles: dict[int, Style | Image.Image] | None = None,
    panel_hints: dict[int, list[dict]] | None = None,
    work_size: int = 512,
    margin: int | None = None,
    seed: int | None = None,
    options: FinishOptions | None = None,
    max_pixels: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_panel: Callable[[int, int], None] | None = None,
) -> PageResult:
    """Colour one page and return it at native resolution: `prepare_page`, `colour_pages`, `finish_page`.

    `page` is a decoded image or anything `open_image` reads (then decoding is timed too). All
    panels go to the colorizer in ONE `colorize_batch` call. `should_stop()` is checked between
    stages and between panels (raises `Cancelled`); `on_panel(done, total)` reports progress as
    panels are composited. See `prepare_page` for panels, styles and hints; `options` default to
    `FinishOptions(seed=seed)`.
    """
    decoded: dict[str, float] = {}
    if not isinstance(page, Image.Image):
        t = time.perf_counter()
        page = load_page(page, max_pixels=max_pixels)
        decoded["decode"] = time.perf_counter() - t
    _check(should_stop, "before panel detection")
    prepared = prepare_page(page, style, panels=panels, direction=direction, panel_styles=panel_styles,
                            panel_hints=panel_hints, work_size=work_size, margin=margin)
    prepared.timings.update(decoded)
    _check(should_stop, "before colouring")
    (colours,) = colour_pages([prepared], colorizer, work_size=work_size, seed=seed)
    return finish_page(prepared.lines, prepared.panels, prepared.boxes, colours, finishes=prepared.finishes,
                       references=prepared.references, options=options or FinishOptions(seed=seed),
                       direction=direction,
                       model_version=getattr(colorizer, "model_version", ""),
                       timings=prepared.timings, should_stop=should_stop, on_panel=on_panel)


def whole_image_panel(size: tuple[int, int]) -> Panel:
    """The one panel of a single picture: the whole image."""
    w, h = size
    return Panel((0, 0, w, h), rectangle((0, 0, w, h)), 0)


def colour_image(
    sketch: Image.Image,
    style: Style | Image.Image,
    colorizer: PanelColorizer,
    *,
    hints: list[dict] | None = None,
    work_size: int = 512,
    seed: int | None = None,
    options: FinishOptions | None = None,
) -> PageResult:
    """One picture coloured as a one-panel page: the same draft -> native-resolution finish that
    pages get, so `panelpaint colorize`, the quality report and the service colour alike.
    `hints` are dots {x, y, color} in the picture's pixels."""
    panel = whole_image_panel(sketch.size)
    return render_page(sketch, style, colorizer, panels=[panel], margin=0, work_size=work_size, seed=seed,
                       panel_hints={panel.order: hints} if hints else None, options=options)


def merge_panel(base: np.ndarray, layer: np.ndarray, panel: Panel) -> np.ndarray:
    """`base` with the pixels inside `panel`'s polygon taken from `layer` (both a page-sized layer:
    flats RGB or shading L).

    How a re-rendered panel joins the page's existing result: every pixel outside the polygon
    (other panels, gutters) stays byte-identical to the base.
    """
    if base.shape != layer.shape:
        raise ValueError(f"base layer {base.shape[1::-1]} and new layer {layer.shape[1::-1]} differ in size")
    h, w = layer.shape[:2]
    inside = panel.mask((w, h)) > 0
    merged = base.copy()
    merged[inside] = layer[inside]
    return merged


def write_outputs(
    result: PageResult,
    out_dir: str | Path,
    formats: set[str] | frozenset[str] = FORMATS,
    *,
    stem: str = "page",
) -> dict[str, Path]:
    """Write the page's outputs into `out_dir`; returns {kind: path}; encode times go to result.timings.

    Formats: "png" (composite, flats and line layer PNGs), "psd" (layered, lines on multiply),
    "ora" (OpenRaster, same layers), "json" (panel geometry), "preview" (JPEG preview and thumbnail).
    """
    return export.write_page(result, Path(out_dir), set(formats), stem=stem)


def encode_outputs(
    result: PageResult,
    formats: set[str] | frozenset[str] = FORMATS,
    *,
    stem: str = "page",
) -> dict[str, tuple[str, bytes]]:
    """The same outputs as `write_outputs`, in memory: {kind: (file name, bytes)}, for object storage.

    Kinds: composite, flats, lines (png); psd; ora; json; preview and thumbnail (preview).
    """
    return export.encode_page(result, set(formats), stem=stem)
