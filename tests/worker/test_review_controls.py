"""No review control may do nothing, through the real worker path (private Redis, SQLite store,
tiny weights, a Celery worker process): two seeds give different result files while no seed gives
the canonical one again, a variant set gives different results and a pick changes the page's
result, and a hint dot fills its whole region exactly."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from harness import PAGE_SIZE, Stack
from tests.testkit import random_weights
from panelpaint import queue
from panelpaint.flats import Background
from panelpaint.store import renders, styles, variants
from panelpaint.store.schema import RunStatus

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def close_hues_png() -> Image.Image:
    """A painting of eight stripes of neighbouring hues: its colour key has swatches close enough
    together that a seed's choice among the nearest ones shows."""
    img = Image.new("RGB", (128, 96))
    d = ImageDraw.Draw(img)
    for i in range(8):
        d.rectangle([i * 16, 0, i * 16 + 15, 95], fill=(200 - 8 * i, 90 + 10 * i, 60 + 12 * i))
    return img


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("controls")
    st = Stack(directory, random_weights(directory / "tiny.safetensors"))
    image = close_hues_png()
    buf = io.BytesIO()
    image.save(buf, "PNG")
    key = st.storage.put_bytes(buf.getvalue(), ".png")
    with st.store.session() as s:  # the stack's batches use this style, with its colour key stored
        st.style_id = styles.add_style_reference(s, st.studio_id, "close hues", [], key, *image.size,
                                                 palette=styles.style_palette(image)).id
    st.start_worker("a", concurrency=1)
    yield st
    st.close()


def finished_page(stack: Stack, name: str) -> tuple[int, int]:
    """(page id, render id) of a page coloured once (canonical)."""
    _, (render_id,) = stack.add_batch([name])
    (render,) = stack.wait_final([render_id], 90)
    assert render.status == RunStatus.succeeded, render.error
    return stack.page_of(render_id).id, render_id


def run(stack: Stack, queued: list) -> list:
    """Send the queued renders (after their commit) and wait for them."""
    for render_id, task_id in queued:
        queue.enqueue_render(stack.settings, render_id, task_id)
    done = stack.wait_final([r for r, _ in queued], 120)
    assert all(r.status == RunStatus.succeeded for r in done), [(r.id, r.error) for r in done]
    return done


def rerender(stack: Stack, page_id: int, **kw) -> list:
    with stack.store.session() as s:
        r = renders.rerender(s, page_id, **kw)
        return [(r.id, r.task_id)]


def pixels(stack: Stack, key: str) -> np.ndarray:
    with Image.open(io.BytesIO(stack.storage.read_bytes(key))) as img:
        return np.asarray(img.convert("RGB"))


def test_two_seeds_give_different_results_and_no_seed_the_canonical_one_again(stack):
    page_id, first = finished_page(stack, "seeds.png")
    (canonical,) = stack.renders([first])
    (again,) = run(stack, rerender(stack, page_id))
    (a,) = run(stack, rerender(stack, page_id, seed=12345))
    (b,) = run(stack, rerender(stack, page_id, seed=777))
    # Storage keys are content hashes: equal keys, equal files.
    assert again.outputs["composite"] == canonical.outputs["composite"]
    assert len({canonical.outputs["composite"], a.outputs["composite"], b.outputs["composite"]}) == 3
    assert len({canonical.outputs["flats"], a.outputs["flats"], b.outputs["flats"]}) == 3  # other flat colours
    flats = [pixels(stack, r.outputs["flats"]) for r in (canonical, a, b)]
    assert (flats[1] != flats[2]).any(axis=2).mean() > 0.02


def test_variants_differ_side_by_side_and_a_pick_makes_one_the_result(stack):
    page_id, first = finished_page(stack, "variants.png")
    with stack.store.session() as s:
        vset = variants.queue_variants(s, page_id, 3)
        queued = [(r.id, r.task_id) for r in vset.renders]
    done = run(stack, queued)
    assert len({r.seed for r in done}) == 3
    assert len({r.outputs["composite"] for r in done} | {stack.renders([first])[0].outputs["composite"]}) == 4
    page = stack.page_of(first)
    assert (page.current_render_id, page.status) == (first, RunStatus.succeeded)  # the result stayed
    with stack.store.session() as s:
        variants.pick_variant(s, stack.studio_id, done[2].id)
    assert stack.page_of(first).current_render_id == done[2].id


def test_a_hint_fills_its_whole_region_exactly(stack):
    page_id, first = finished_page(stack, "hint.png")
    panel = stack.panels(page_id)[0]
    # Near the panel's corner, inside its frame: the panel's background region (no shape reaches it).
    x, y = panel.x + 10, panel.y + 10
    colour = (18, 171, 52)
    hint = [{"x": x, "y": y, "color": "#12ab34"}]
    (done,) = run(stack, rerender(stack, page_id, panel_id=panel.id, hints=hint))
    assert done.hints == [{"x": float(x), "y": float(y), "color": "#12ab34"}]
    flats = pixels(stack, done.outputs["flats"])
    assert tuple(flats[y, x]) == colour
    inside = flats[panel.y:panel.y + panel.h, panel.x:panel.x + panel.w]
    filled = np.all(inside == colour, axis=2).mean()
    assert filled > 0.3, filled  # the region, not a dab around the dot
    before = pixels(stack, stack.renders([first])[0].outputs["flats"])
    assert not np.all(before[panel.y:panel.y + panel.h, panel.x:panel.x + panel.w] == colour, axis=2).any()
    # The composite shows it: the region's pixels there are green-dominant (shading only darkens).
    composite = pixels(stack, done.outputs["composite"]).astype(int)
    region = np.all(flats == colour, axis=2)
    green = composite[region]
    assert (green[:, 1] > green[:, 0]).mean() > 0.9 and (green[:, 1] > green[:, 2]).mean() > 0.9
    assert PAGE_SIZE == (flats.shape[1], flats.shape[0])


def test_a_batch_background_overrides_the_styles_own(stack):
    def composite_of(name: str, **options) -> str:
        _, (render_id,) = stack.add_batch([name], options=options)
        (render,) = stack.wait_final([render_id], 90)
        assert render.status == RunStatus.succeeded, render.error
        return render.outputs["composite"]

    paper = composite_of("bg-a.png")
    by_batch = composite_of("bg-a.png", background="coloured")
    with stack.store.session() as s:
        styles.get_style(s, stack.studio_id, stack.style_id).background = Background.COLOURED
    try:
        by_style = composite_of("bg-a.png")
    finally:
        with stack.store.session() as s:
            styles.get_style(s, stack.studio_id, stack.style_id).background = Background.PAPER
    assert by_batch == by_style != paper  # same content hash: the same file
