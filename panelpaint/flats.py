"""Flats from the line art: closed regions at native resolution, one colour each, and a shading layer.

`segment` cuts the line art into regions (trapped-ball filling, so a small gap in a line does not
merge two regions), `region_colours` gives each region one colour from the network's draft,
`paint` draws the hard-edged flats and `shading` measures the draft's variation inside each region as
a multiply layer. `finish_panel` runs them for one panel.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

import cv2
import numpy as np

from panelpaint.colour import PAPER_L, PAPER_WHITE, chroma, is_paper, lab_to_rgb, luma, rgb_to_lab
from panelpaint.composite import LINE_THRESHOLD, multiply
from panelpaint.images import gray_percentiles
from panelpaint.palette import Palette, snap
from panelpaint.reference_match import Match

# Gap-closing ball radii (pixels) for a crop whose long side is REFERENCE_SIZE, largest first: a
# region is first found where a ball of the largest radius fits, so a gap narrower than about twice
# that radius does not join it to its neighbour; what is left is filled with smaller balls, then as
# plain connected pieces. Radii grow with the crop's long side (never below 1 px).
REFERENCE_SIZE = 256
GAP_RADII = (16.0, 6.0, 2.0)
# Regions smaller than this share of the crop's area merge into the neighbour they share most border with.
MIN_AREA_SHARE = 3e-4
# A sliver (what the balls left in a corner or a neck: smaller than SLIVER_AREA times the largest
# radius squared, with at least SLIVER_OPEN of its border open to one neighbour, not a line) rejoins
# that neighbour. A region behind a small gap touches its neighbour only across the gap and stays.
SLIVER_AREA = 2.0
SLIVER_OPEN = 0.25
# Background: a region covering at least BACKGROUND_CONTACT of the crop's outer ring of pixels. When
# that ring is a gutter (the regions on it cover under GUTTER_AREA of the crop: a margin around a
# panel's frame), the ring BACKGROUND_INSET (share of the crop's long side) further in counts too.
BACKGROUND_CONTACT = 0.2
BACKGROUND_INSET = 0.04
GUTTER_AREA = 0.25
# A smaller piece on the crop's edge that the draft paints like the background (within this ΔE of
# the background's colour) is background too: the corners around a round figure, say. Measured on
# held-out paintings: 2 % more paper kept, no loss elsewhere (docs/quality.md).
BACKGROUND_LIKE_DELTA_E = 20.0
# Draft samples closer than this many draft pixels to a region's edge are left out of its colour.
EDGE_MARGIN = 1
# The draft is blurred over about this many of its pixels at an edge; shading inside that band
# is taken from further in.
DRAFT_BLUR = 2.0
# A reference that shows the same drawing (`panelpaint.reference_match`) colours a region when it
# covers at least REFERENCE_COVER of the region's samples. A background region also needs
# REFERENCE_CONSISTENT of them within CONSISTENT_DELTA_E of their median: a corner that the
# reference shows only in part picks up the figure next to it (measured on held-out paintings:
# such mixed background regions were paper in the truth, docs/quality.md).
# Coverage is counted on the reference's trusted area shrunk by COVER_INSET of its pixels: a sliver
# along a line, where the alignment is least sure, does not decide a region on its own (a house's
# sky took the roof's red from one, docs/quality.md).
REFERENCE_COVER = 0.1
COVER_INSET = 2
CONSISTENT_DELTA_E = 15.0
REFERENCE_CONSISTENT = 0.85
# A region the draft left paper stays paper where the reference shows it as a near-paper tint
# (L > PAPER_L, chroma < NEAR_PAPER_CHROMA): the same paper brightened, printed or scanned a little
# off white (a document icon's sheet went pale green from its copy, docs/quality.md).
NEAR_PAPER_CHROMA = 15.0
# When the reference shows the background as paper, a piece on the crop's edge that it does not
# show is that same paper, cut off from the rest by the drawing (beside a house, the corner of an
# icon), when at least EDGE_PIECE_CONTACT of its outline is the crop's edge and the draft paints it
# light (L >= EDGE_PIECE_L). A figure cut by the frame meets the edge along a short stretch of its
# outline, and the parts the network drafts dark (hair, clothes of a portrait) are not paper.
EDGE_PIECE_CONTACT = 0.25
EDGE_PIECE_L = 45.0


class Background(str, enum.Enum):
    """What becomes of the background regions (see `background_regions`)."""

    PAPER = "paper"  # exactly paper white
    COLOURED = "coloured"  # the draft's colour, like any region


@dataclass(eq=False)
class Regions:
    """A crop cut into `n` regions: every pixel, line pixels included, carries a label 0..n-1."""

    labels: np.ndarray  # int32 HxW
    n: int
    areas: np.ndarray  # int64 (n,): pixels per region
    line: np.ndarray  # bool HxW: the line pixels (each also has a label: its nearest region's)
    border_contact: np.ndarray  # int64 (n,): pixels of the crop's outer rows and columns in each region

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape

    @property
    def border(self) -> np.ndarray:
        """Boolean (n,): the regions that touch the crop's border."""
        return self.border_contact > 0

    @cached_property
    def edge_distance(self) -> np.ndarray:
        """float32 HxW: distance of each pixel to the nearest line pixel or region boundary (0 there)."""
        lab = self.labels
        edge = self.line.copy()
        dh = lab[:, 1:] != lab[:, :-1]
        dv = lab[1:, :] != lab[:-1, :]
        edge[:, 1:] |= dh
        edge[:, :-1] |= dh
        edge[1:, :] |= dv
        edge[:-1, :] |= dv
        return cv2.distanceTransform((~edge).view(np.uint8), cv2.DIST_L2, 5)


def _scale(shape: tuple[int, int]) -> float:
    return max(1.0, max(shape) / REFERENCE_SIZE)


def gap_radii(shape: tuple[int, int]) -> tuple[float, ...]:
    """The ball radii used for a crop of `shape` (H, W), largest first."""
    s = _scale(shape)
    return tuple(sorted({max(1.0, round(r * s, 1)) for r in GAP_RADII}, reverse=True))


def min_area(shape: tuple[int, int]) -> int:
    """Regions smaller than this (pixels) merge into a neighbour."""
    return max(4, int(round(MIN_AREA_SHARE * shape[0] * shape[1])))


def line_mask(lines: np.ndarray) -> np.ndarray:
    """Boolean mask of the line pixels of grey uint8 line art, on any paper: `normalize_lines`'
    levels (paper at the 90th percentile, ink at the 1st) thresholded at LINE_THRESHOLD, except that
    art with under 1 % ink takes its darkest pixel as the ink, where normalize_lines sees a blank."""
    paper, ink = gray_percentiles(lines, (90, 1))
    if paper - ink < 16:
        ink = int(lines.min())
    if paper - ink < 16:
        return np.zeros(lines.shape, bool)
    return lines < ink + (paper - ink) * LINE_THRESHOLD / 255.0


def _fill(free: np.ndarray, radii: Sequence[float]) -> tuple[np.ndarray, int]:
    """Trapped-ball filling of the True pixels of `free`: int32 labels (0 = not filled: the lines), count."""
    labels = np.zeros(free.shape, np.int32)
    n = 0
    for r in radii:
        open_ = free & (labels == 0)
        # Seeds: the centres where a ball of radius r touches neither a line nor a region found at a
        # larger radius. Two seeds meet only where the free space is wider than the ball.
        dist = cv2.distanceTransform(open_.view(np.uint8), cv2.DIST_L2, 5)
        seeds = (dist > r).view(np.uint8)
        count, comp = cv2.connectedComponents(seeds, connectivity=4)
        if count <= 1:
            continue
        # Each region is what its balls cover: the pixels within r of a seed (all of them free and
        # reached through free space), labelled with the nearest seed's piece.
        to_seed, nearest = cv2.distanceTransformWithLabels(1 - seeds, cv2.DIST_L2, 5,
                                                           labelType=cv2.DIST_LABEL_PIXEL)
        seed_comp = comp[seeds.view(bool)]  # nearest's labels number the seed pixels in raster order
        seed_comp += n
        np.copyto(labels, seed_comp[nearest - 1], where=(to_seed <= r) & open_)
        n += count - 1
    # What no ball reached (thin strips, corners, the gaps themselves): plain 4-connected pieces.
    rest = free & (labels == 0)
    count, comp = cv2.connectedComponents(rest.view(np.uint8), connectivity=4)
    if count > 1:
        comp += n
        np.copyto(labels, comp, where=rest)
        n += count - 1
    return labels, n


def _assign_lines(labels: np.ndarray) -> None:
    """Give every unlabelled (-1) pixel the label of the nearest labelled pixel, in place."""
    unlabelled = (labels < 0).view(np.uint8)
    if not unlabelled.any() or unlabelled.all():
        return
    _, nearest = cv2.distanceTransformWithLabels(unlabelled, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    flat = labels.ravel()
    holes = np.flatnonzero(unlabelled.ravel())
    owners = np.flatnonzero(unlabelled.ravel() == 0)
    flat[holes] = flat[owners[nearest.ravel()[holes] - 1]]


def _neighbour_pairs(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, counts): every pair of labels a < b that touch (4-neighbourhood) as a * n + b, with the
    length of their shared edge. Label -1 (unassigned) touches nothing."""
    h = labels[:, 1:] != labels[:, :-1]
    v = labels[1:, :] != labels[:-1, :]
    a = np.concatenate([labels[:, :-1][h], labels[:-1, :][v]]).astype(np.int64)
    b = np.concatenate([labels[:, 1:][h], labels[1:, :][v]]).astype(np.int64)
    real = (a >= 0) & (b >= 0)
    a, b = a[real], b[real]
    return np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_counts=True)


def _merge_small(labels: np.ndarray, n: int, smallest: int, direct: tuple[np.ndarray, np.ndarray],
                 sliver: float) -> np.ndarray:
    """A map (n,) from each label to the label of its merged group: each region below `smallest`
    pixels, and each sliver (below `sliver` pixels, SLIVER_OPEN of its border open), joins a neighbour.
    Shared border through open paper (`direct`: pairs counted before the line pixels were assigned)
    decides first, so the sliver a ball left in a corner rejoins its own region rather than the one
    across the line; then shared border overall, area, label."""
    areas = np.bincount(labels.ravel(), minlength=n)
    root = np.arange(n)
    if n < 2 or areas.min() >= max(smallest, sliver):
        return root
    pk, pc = _neighbour_pairs(labels, n)
    dk, dc = direct
    pd = np.zeros(len(pk))
    pd[np.searchsorted(pk, dk)] = dc  # every direct pair also touches after the lines are assigned
    pa, pb = pk // n, pk % n
    ids = np.arange(n)
    # Rounds: a group that is still too small after joining another small one goes on growing.
    for _ in range(16):
        ga, gb = root[pa], root[pb]
        between = ga != gb
        keys, inverse = np.unique(np.minimum(ga, gb)[between] * n + np.maximum(ga, gb)[between],
                                  return_inverse=True)
        counts = np.bincount(inverse, weights=pc[between])
        dcounts = np.bincount(inverse, weights=pd[between])
        a, b = keys // n, keys % n
        group_area = np.bincount(root, weights=areas, minlength=n)
        border = np.bincount(a, counts, n) + np.bincount(b, counts, n)
        small = (group_area < max(smallest, sliver)) & (root == ids)
        src, dst = np.concatenate([a, b]), np.concatenate([b, a])
        c, d = np.concatenate([counts, counts]), np.concatenate([dcounts, dcounts])
        pick = small[src]
        if not pick.any():
            break
        src, dst, c, d = src[pick], dst[pick], c[pick], d[pick]
        order = np.lexsort((-dst, -group_area[dst], -c, -d, src))
        src, dst, d = src[order], dst[order], d[order]
        first = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
        src, dst, d = src[first], dst[first], d[first]
        joins = (group_area[src] < smallest) | (d >= SLIVER_OPEN * border[src])
        if not joins.any():
            break
        target = ids.copy()
        target[src[joins]] = dst[joins]
        # Two small groups that chose each other: the smaller (then lower label) joins the other.
        mutual = (target[target] == ids) & (target != ids)
        stays = mutual & ((group_area > group_area[target]) | ((group_area == group_area[target]) & (ids > target)))
        target[stays] = ids[stays]
        while True:
            nxt = target[target]
            if np.array_equal(nxt, target):
                break
            target = nxt
        root = target[root]
    return root


def segment(lines: np.ndarray) -> Regions:
    """Cut grey uint8 line art (0 ink, 255 paper) into closed regions; every pixel gets a label.

    The lines are found on any paper (`line_mask`: grey paper, faint scans). Gaps in the lines narrower than about
    twice the smallest ball radius do not join regions (`gap_radii`); line pixels take the label of
    the nearest region; regions smaller than `min_area` merge into the neighbour they share most
    border with. Labels are numbered 0..n-1.
    """
    lines = np.asarray(lines)
    if lines.ndim != 2 or lines.dtype != np.uint8:
        raise ValueError(f"line art must be a grey uint8 array, got {lines.dtype} {lines.shape}")
    line = line_mask(lines)
    radii = gap_radii(lines.shape)
    labels, n = _fill(~line, radii)
    if n == 0:  # all ink: one region
        labels[:] = 1
        n = 1
    labels -= 1
    direct = _neighbour_pairs(labels, n)
    _assign_lines(labels)
    root = _merge_small(labels, n, min_area(lines.shape), direct, SLIVER_AREA * radii[0] ** 2)
    kept = np.flatnonzero(root == np.arange(n))
    compact = np.zeros(n, np.int32)
    compact[kept] = np.arange(len(kept), dtype=np.int32)
    labels = compact[root][labels]
    n = len(kept)
    return Regions(labels=labels, n=n, areas=np.bincount(labels.ravel(), minlength=n), line=line,
                   border_contact=np.bincount(_ring(labels, 0), minlength=n))


def _ring(labels: np.ndarray, inset: int) -> np.ndarray:
    """The labels along the rectangle `inset` pixels inside the crop's edge."""
    h, w = labels.shape
    inset = min(inset, (h - 1) // 2, (w - 1) // 2)
    box = labels[inset:h - inset, inset:w - inset]
    return np.concatenate([box[0], box[-1], box[1:-1, 0], box[1:-1, -1]])


def background_regions(regions: Regions) -> np.ndarray:
    """Boolean (n,): the regions forming the crop's background.

    The region covering most of the crop's outer ring of pixels, and every region covering at least
    BACKGROUND_CONTACT of it. When that ring is a panel's gutter (the regions on it cover under
    GUTTER_AREA of the crop: the margin around a frame), the same rule is applied to the ring
    BACKGROUND_INSET further in, inside the frame, too. A figure cut by the frame covers a short
    stretch only and is not background.
    """
    out = np.zeros(regions.n, bool)
    for contact in _edge_contacts(regions):
        out |= contact >= BACKGROUND_CONTACT * contact.sum()
        out[int(np.argmax(contact))] = True
    return out


def _edge_contacts(regions: Regions) -> list[np.ndarray]:
    """Pixels of each region on the crop's outer ring, and, when that ring is a panel's gutter (its
    regions cover under GUTTER_AREA of the crop), on the ring BACKGROUND_INSET further in, inside
    the frame."""
    outer = regions.border_contact
    if regions.areas[outer > 0].sum() >= GUTTER_AREA * regions.labels.size:
        return [outer]
    inset = int(round(BACKGROUND_INSET * max(regions.shape)))
    return [outer, np.bincount(_ring(regions.labels, inset), minlength=regions.n)]


def background_like(regions: Regions, colours: np.ndarray, background: np.ndarray) -> np.ndarray:
    """`background` (bool, n) grown by the regions on the crop's edge (or, for a panel, on the inside
    of its frame: `background_regions`) whose colour (n x 3 uint8, e.g. the draft's) lies within
    BACKGROUND_LIKE_DELTA_E of the background's area-weighted mean."""
    background = np.asarray(background, bool)
    if not background.any():
        return background
    lab = rgb_to_lab(np.asarray(colours, np.uint8)).astype(np.float64)
    mean = np.average(lab[background], axis=0, weights=regions.areas[background])
    near = np.linalg.norm(lab - mean, axis=1) < BACKGROUND_LIKE_DELTA_E
    on_edge = np.logical_or.reduce([c > 0 for c in _edge_contacts(regions)])
    return background | (near & on_edge)


def _grouped_median(groups: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group median of each column of `values` (float, (m, c)); returns (medians (n, c), has (n,))."""
    counts = np.bincount(groups, minlength=n)
    has = counts > 0
    out = np.zeros((n, values.shape[1]), np.float32)
    if not has.any():
        return out, has
    starts = np.cumsum(counts) - counts
    lo = (starts + (counts - 1) // 2)[has]
    hi = (starts + counts // 2)[has]
    for c in range(values.shape[1]):
        order = np.lexsort((values[:, c], groups))
        v = values[order, c]
        out[has, c] = (v[lo] + v[hi]) / 2
    return out, has


def _sample_grid(shape: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Native pixel rows and columns under the centres of a (h, w) grid laid over a crop of `shape`."""
    (hh, ww), (h, w) = shape, size
    ys = np.minimum(((np.arange(h) + 0.5) * hh / h).astype(np.int64), hh - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * ww / w).astype(np.int64), ww - 1)
    return ys, xs


def region_colours(regions: Regions, draft: np.ndarray) -> np.ndarray:
    """One colour per region (n x 3 uint8): the median, in Lab, of the draft inside the region.

    `draft` is RGB uint8 at any size (the network's work size). Each draft pixel is read at its
    centre's native position; only samples off the lines and at least EDGE_MARGIN draft pixels from
    the region's edge count, since the draft blurs its edges and draws its own lines. A region
    without such samples uses all its samples; one too small to hold any uses the draft under its
    own native pixels.
    """
    draft = np.asarray(draft)
    if draft.ndim != 3 or draft.shape[2] != 3 or draft.dtype != np.uint8:
        raise ValueError(f"draft must be RGB uint8 (h, w, 3), got {draft.dtype} {draft.shape}")
    n = regions.n
    grid, inner = _inner_samples(regions, draft.shape[:2])
    lab = rgb_to_lab(draft).reshape(-1, 3)
    keys = grid.ravel()
    colours, has = _grouped_median(keys[inner.ravel()], lab[inner.ravel()], n)
    if not has.all():
        some, got = _grouped_median(keys, lab, n)
        fill = ~has & got
        colours[fill] = some[fill]
        has |= got
    if not has.all():
        missing = np.flatnonzero(~has[regions.labels.ravel()])
        py, px = np.divmod(missing, regions.shape[1])
        dy = np.minimum((py * draft.shape[0]) // regions.shape[0], draft.shape[0] - 1)
        dx = np.minimum((px * draft.shape[1]) // regions.shape[1], draft.shape[1] - 1)
        rest, got = _grouped_median(regions.labels.ravel()[missing], lab.reshape(draft.shape)[dy, dx], n)
        colours[~has] = rest[~has]
    return lab_to_rgb(colours)


def _inner_samples(regions: Regions, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For a (h, w) image laid over the crop: each grid pixel's region label, and whether it lies off
    the lines and at least EDGE_MARGIN grid pixels from its region's edge (the samples a region's
    colour is read from)."""
    ys, xs = _sample_grid(regions.shape, size)
    grid = regions.labels[np.ix_(ys, xs)]
    on_line = regions.line[np.ix_(ys, xs)]
    kernel = np.ones((2 * EDGE_MARGIN + 1,) * 2, np.uint8)
    g = grid.astype(np.float32)
    inner = (cv2.erode(g, kernel, borderType=cv2.BORDER_REPLICATE) ==
             cv2.dilate(g, kernel, borderType=cv2.BORDER_REPLICATE)) & ~on_line
    return grid, inner


def reference_colours(regions: Regions, matched: Match) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's colour of each region where a match (`panelpaint.reference_match.match`)
    shows it: (colours n x 3 uint8: the median in Lab of the region's samples that the reference
    covers; covered (n,): at least REFERENCE_COVER of the region's samples are covered;
    consistent (n,): at least REFERENCE_CONSISTENT of them lie within CONSISTENT_DELTA_E of the median)."""
    n = regions.n
    grid, inner = _inner_samples(regions, matched.image.shape[:2])
    keys = grid.ravel()
    use = (inner & matched.valid).ravel()
    lab = rgb_to_lab(matched.image).reshape(-1, 3)
    medians, has = _grouped_median(keys[use], lab[use], n)
    total = np.bincount(keys[inner.ravel()], minlength=n)
    count = np.bincount(keys[use], minlength=n)
    kernel = np.ones((2 * COVER_INSET + 1,) * 2, np.uint8)
    sure = cv2.erode(np.ascontiguousarray(matched.valid, np.uint8), kernel) > 0
    count_sure = np.bincount(keys[(inner & sure).ravel()], minlength=n)
    near = np.linalg.norm(lab[use] - medians[keys[use]], axis=1) < CONSISTENT_DELTA_E
    close = np.bincount(keys[use], weights=near, minlength=n)
    covered = has & (count_sure >= REFERENCE_COVER * np.maximum(total, 1))
    consistent = close >= REFERENCE_CONSISTENT * np.maximum(count, 1)
    return lab_to_rgb(medians), covered, consistent & covered


def paper_regions(colours: np.ndarray) -> np.ndarray:
    """Boolean (n,): the colours (n x 3 uint8) near enough to white to be paper (see panelpaint.colour)."""
    return is_paper(rgb_to_lab(colours))


Hint = tuple[float, float, tuple[int, int, int]]


def apply_hints(regions: Regions, colours: np.ndarray, dots: Iterable[Hint]) -> np.ndarray:
    """A copy of `colours` in which the region under each dot (x, y, (r, g, b)), in crop pixels, has
    exactly that colour; later dots win. A dot on a line pixel colours the region that pixel belongs
    to; a dot outside the crop is ignored. A colour that is not three integers 0..255 is a ValueError."""
    out = np.array(colours, dtype=np.uint8, copy=True)
    h, w = regions.shape
    for x, y, rgb in dots:
        colour = tuple(rgb)
        if len(colour) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in colour):
            raise ValueError(f"hint colour must be three integers 0..255, got {rgb!r}")
        col, row = int(np.floor(x)), int(np.floor(y))
        if 0 <= row < h and 0 <= col < w:
            out[regions.labels[row, col]] = colour
    return out


def paint(regions: Regions, colours: np.ndarray) -> np.ndarray:
    """The flats: HxWx3 uint8, each region in its one colour, hard edges (a magic-wand selection)."""
    colours = np.asarray(colours, dtype=np.uint8)
    if colours.shape != (regions.n, 3):
        raise ValueError(f"need {regions.n} colours (n x 3), got {colours.shape}")
    return cv2.merge([np.take(np.ascontiguousarray(colours[:, c]), regions.labels) for c in range(3)])


def shading(regions: Regions, base: np.ndarray, draft: np.ndarray, *, margin: float | None = None,
            skip: np.ndarray | None = None) -> np.ndarray:
    """The draft's light and shade inside each region as a multiply layer (HxW uint8, 255 = no change).

    `base` (n x 3 uint8) is each region's colour in the draft (`region_colours`); `draft` is the
    draft (RGB uint8) at the crop's size or smaller (it is brought to the crop's size here). The
    layer is the draft's luma over its region's base luma, capped at 1: multiply can only darken, so
    what is lighter than the region's colour stays flat. Within `margin` native pixels of a region's
    edge (default: DRAFT_BLUR draft pixels), where the draft mixes in its neighbours and its own
    lines, a pixel takes the value of the nearest pixel further in of the same region, or no shading
    if the region has none, so no shade crosses a region boundary. Regions in `skip` (e.g. paper)
    get no shading. Measuring against `base` rather than the final flat colour keeps the shading of
    a region whose colour a palette or a hint changed.
    """
    draft = np.asarray(draft)
    if draft.ndim != 3 or draft.shape[2] != 3 or draft.dtype != np.uint8:
        raise ValueError(f"draft must be RGB uint8 (h, w, 3), got {draft.dtype} {draft.shape}")
    h, w = regions.shape
    scale = max(h / draft.shape[0], w / draft.shape[1])
    if margin is None:
        margin = DRAFT_BLUR * max(1.0, scale)
    grey = cv2.cvtColor(draft, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if grey.shape != (h, w):
        grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_LINEAR)
    base_luma = luma(np.asarray(base, dtype=np.uint8).reshape(-1, 3))
    if base_luma.shape != (regions.n,):
        raise ValueError(f"need {regions.n} base colours (n x 3), got {np.shape(base)}")
    # 1 / base luma per region; 0 on (near) black, where a ratio means nothing: those get no shading.
    inverse = np.where(base_luma >= 8.0, 1.0 / np.maximum(base_luma, 8.0), 0.0).astype(np.float32)
    if skip is not None:
        inverse[np.asarray(skip, bool)] = 0.0
    factor = np.take(inverse, regions.labels)
    layer = np.minimum(grey * factor, np.float32(1.0))
    np.copyto(layer, np.float32(1.0), where=factor == 0)
    sigma = max(0.5, margin / 4)
    layer = cv2.GaussianBlur(layer, (0, 0), sigma)
    # Inside: far enough from any edge that neither the draft's bleeding nor the blur reached it.
    inner = regions.edge_distance > margin + 2 * sigma
    if inner.any():
        _, nearest = cv2.distanceTransformWithLabels((~inner).view(np.uint8), cv2.DIST_L2, 5,
                                                     labelType=cv2.DIST_LABEL_PIXEL)
        source = np.flatnonzero(inner.ravel())[nearest.ravel() - 1]
        labels = regions.labels.ravel()
        same = labels[source] == labels
        layer = np.where(same, layer.ravel()[source], np.float32(1.0)).reshape(h, w)
    else:
        layer[:] = 1.0
    if skip is not None:
        np.copyto(layer, np.float32(1.0), where=np.take(np.asarray(skip, bool), regions.labels))
    return np.clip(layer * 255.0 + 0.5, 0, 255).astype(np.uint8)


def edge_share(regions: Regions) -> np.ndarray:
    """float (n,): the share of each region's outline that is the crop's edge (0 for a region inside)."""
    keys, lengths = _neighbour_pairs(regions.labels, regions.n)
    outline = (np.bincount(keys // regions.n, weights=lengths, minlength=regions.n)
               + np.bincount(keys % regions.n, weights=lengths, minlength=regions.n) + regions.border_contact)
    return regions.border_contact / np.maximum(outline, 1)


def _with_reference(regions: Regions, colours: np.ndarray, paper: np.ndarray, matched: Match,
                    main_background: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`colours` and `paper` with the reference's colour in each region it covers (`reference_colours`).

    A background region takes it only where the reference is consistent there. The background
    `group` (the regions `background_like` made paper) follows its largest region the reference
    covers: when the reference shows paper there, the whole group stays paper, since a corner the
    reference shows only in part is the rest of that same paper; so it does when the reference shows
    none of the background, since a corner alone is where a warped or cropped reference spills the
    figure's colour. When it shows the background as paper, the light edge pieces it does not show
    become paper too (EDGE_PIECE_CONTACT). A region the draft left paper stays paper under a
    near-paper tint of the reference (NEAR_PAPER_CHROMA)."""
    ref, covered, consistent = reference_colours(regions, matched)
    ref_lab = rgb_to_lab(ref)
    ref_paper = is_paper(ref_lab)
    use = covered & (consistent | ~main_background) & (consistent | ~group)
    seen = np.flatnonzero(main_background & use)
    background_paper = len(seen) > 0 and bool(ref_paper[seen[np.argmax(regions.areas[seen])]])
    if background_paper or not len(seen):
        use &= ~group
    use &= ~(paper & (ref_lab[:, 0] > PAPER_L) & (chroma(ref_lab) < NEAR_PAPER_CHROMA))
    colours, paper = colours.copy(), paper.copy()
    if background_paper:
        pieces = ((regions.border_contact > 0) & ~covered & ~main_background
                  & (rgb_to_lab(colours)[:, 0] >= EDGE_PIECE_L))
        if pieces.any():  # edge_share walks the whole label image: only when a piece could use it
            paper |= pieces & (edge_share(regions) >= EDGE_PIECE_CONTACT)
    colours[use] = ref[use]
    paper[use] = ref_paper[use]
    colours[paper] = PAPER_WHITE
    return colours, paper


_shading_layer = shading  # finish_panel's `shading` flag hides the function's name there


def apply_shading(flats: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """The shading layer on the flats with the multiply blend mode, exactly as PSD/ORA readers do it:
    round(flat * shade / 255) per channel (255 leaves a colour unchanged)."""
    return multiply(flats, layer)


@dataclass(eq=False)
class PanelFlats:
    """One panel's finish at native resolution; the caller multiplies the line art on top."""

    regions: Regions
    colours: np.ndarray  # n x 3 uint8: each region's flat colour
    flats: np.ndarray  # HxWx3 uint8: `colours` painted, hard edges
    shading: np.ndarray | None  # HxW uint8 multiply layer (None when not asked for)
    paper: np.ndarray  # bool (n,): the regions left paper white

    @property
    def coloured(self) -> np.ndarray:
        """The flats with the shading applied (no lines): what the composite is made of."""
        return self.flats if self.shading is None else apply_shading(self.flats, self.shading)


def finish_panel(
    draft: np.ndarray,
    lines: np.ndarray,
    *,
    palette: Palette | None = None,
    hints: Iterable[Hint] = (),
    background: Background = Background.PAPER,
    shading: bool = True,
    rng: np.random.Generator | None = None,
    matched: Match | None = None,
) -> PanelFlats:
    """Flats (and a shading layer) for one panel from the network's `draft` (RGB uint8, any size)
    and the panel's native grey line art `lines`.

    Each region takes the draft's colour; near-white regions (and with `Background.PAPER` the
    background) become exactly paper white; with a `palette` the others snap to its nearest colour
    (`rng` samples among the nearest few instead: variants); where a reference showing the same
    drawing is `matched` (`panelpaint.reference_match`), the regions it covers take its colours
    (`_with_reference`); hint dots (x, y, (r, g, b)) in crop pixels then set their regions' colours
    exactly.
    """
    background = Background(background)
    regions = segment(lines)
    base = region_colours(regions, draft)
    paper = paper_regions(base)
    main_background = background_regions(regions)
    group = np.zeros(regions.n, bool)
    if background is Background.PAPER:
        group = background_like(regions, base, main_background)
        paper |= group
    colours = base.copy()
    if palette is not None:
        colours = snap(colours, palette, keep=paper, weights=regions.areas, rng=rng)
    colours[paper] = PAPER_WHITE
    if matched is not None:
        colours, paper = _with_reference(regions, colours, paper, matched, main_background, group)
    colours = apply_hints(regions, colours, hints)
    paper = np.all(colours == PAPER_WHITE, axis=1)
    flats = paint(regions, colours)
    layer = None
    if shading:
        layer = _shading_layer(regions, base, draft, skip=paper)
    return PanelFlats(regions=regions, colours=colours, flats=flats, shading=layer, paper=paper)
