"""The page pipeline end to end with a fake colorizer: one batch, exact lines, white gutters, overrides, cancel."""
import io

import numpy as np
import pytest
from PIL import Image

from tests.panelpaint.comic_pages import FakeColorizer, draw_page, grid_boxes
from panelpaint.flats import Background
from panelpaint.images import ImageError
from panelpaint.pages import Cancelled, PanelColorizer, Style, crop_box, detect, render_page, work_dimensions
from panelpaint.panels import Panel

BOXES = grid_boxes([2, 3])
# A coloured background, so that every panel's whole inside is coloured and checkable.
STYLE = Style(Image.new("RGB", (32, 32), (200, 120, 60)), background=Background.COLOURED)


@pytest.fixture(scope="module")
def page():
    return draw_page(BOXES, seed=1)


@pytest.fixture(scope="module")
def rendered(page):
    fake = FakeColorizer()
    return render_page(page, STYLE, fake, seed=5), fake


def inside_any_panel(shape, boxes):
    m = np.zeros(shape, bool)
    for x, y, w, h in boxes:
        m[y:y + h, x:x + w] = True
    return m


def test_fake_colorizer_satisfies_the_protocol():
    assert isinstance(FakeColorizer(), PanelColorizer)


def test_all_panels_in_one_batch_at_work_size(rendered):
    result, fake = rendered
    assert len(fake.calls) == 1
    call = fake.calls[0]
    assert call["n"] == len(BOXES) == len(result.panels)
    assert call["size"] == 512 and call["seed"] == 5 and call["hints"] is None
    assert all(max(s) == 512 and s[0] % 8 == 0 and s[1] % 8 == 0 for s in call["sizes"])
    # The same style object for every panel, so the model encodes the reference once.
    assert len(set(call["style_ids"])) == 1


def test_native_size_and_timings(rendered, page):
    result, _ = rendered
    assert result.composite.size == result.flats.size == result.lines.size == page.size
    assert result.composite.mode == "RGB" and result.lines.mode == "L"
    assert set(result.timings) == {"panels", "model", "flats", "compositing"}
    assert result.model_version == "fake-1"


def test_line_pixels_unchanged_and_gutters_white(rendered, page):
    result, _ = rendered
    lines = np.asarray(page.convert("L"))
    comp = np.asarray(result.composite)
    flats = np.asarray(result.flats)
    assert np.array_equal(np.asarray(result.lines), lines)
    black = lines == 0
    assert black.sum() > 1000 and (comp[black] == 0).all()
    outside = ~inside_any_panel(lines.shape, BOXES)
    assert (flats[outside] == 255).all()
    # In the gutters the composite is exactly the line art (white paper, the page number in black).
    assert np.array_equal(comp[outside], np.repeat(lines[outside][:, None], 3, axis=1))
    # Inside the panels there is colour.
    inner = inside_any_panel(lines.shape, [(x + 10, y + 10, w - 20, h - 20) for x, y, w, h in BOXES]) & (lines == 255)
    assert (np.abs(flats[inner].astype(int) - 255).max(axis=1) > 20).mean() > 0.99


def test_panel_style_override_and_hints_reach_the_model(page):
    fake = FakeColorizer()
    blue = Image.new("RGB", (8, 8), (0, 0, 255))
    x, y, w, h = BOXES[2]
    dot = {"x": x + w // 2, "y": y + h // 2, "color": "#00ff00"}
    result = render_page(page, STYLE, fake, panel_styles={1: Style(blue, background=Background.COLOURED)},
                         panel_hints={2: [dot]})
    assert len(set(fake.calls[0]["style_ids"])) == 2
    hints = fake.calls[0]["hints"]
    assert hints[2] is not None and all(h is None for i, h in enumerate(hints) if i != 2)
    hint = np.asarray(hints[2])
    ys, xs = np.nonzero(hint[..., 3])
    sw, sh = hints[2].size
    bx0, by0, bx1, by1 = crop_box(result.panels[2], page.size, max(8, min(page.size) // 100))
    expect = ((dot["x"] - bx0) * sw / (bx1 - bx0), (dot["y"] - by0) * sh / (by1 - by0))
    assert abs(xs.mean() - expect[0]) < 2 and abs(ys.mean() - expect[1]) < 2
    assert tuple(hint[ys[0], xs[0], :3]) == (0, 255, 0)
    flats = np.asarray(result.flats)
    assert tuple(flats[dot["y"], dot["x"]]) == (0, 255, 0)
    # Panel 1's style is blue: its colours are bluer than panel 0's.
    p0, p1 = (result.panels[i].bbox for i in (0, 1))
    mean = lambda b: flats[b[1] + 20:b[1] + b[3] - 20, b[0] + 20:b[0] + b[2] - 20].reshape(-1, 3).mean(0)  # noqa: E731
    assert mean(p1)[2] > mean(p0)[2] + 50


def test_bad_hint_colour_is_a_value_error(page):
    with pytest.raises(ValueError, match="#rrggbb"):
        render_page(page, STYLE, FakeColorizer(), panel_hints={0: [{"x": 50, "y": 50, "color": "green"}]})


def test_given_panels_skip_detection_and_are_composited(page):
    panels = [Panel.from_dict({"bbox": [100, 100, 200, 150], "order": 0})]
    result = render_page(page, STYLE, FakeColorizer(), panels=panels)
    flats = np.asarray(result.flats)
    assert (flats[:99] == 255).all() and (flats[:, 301:] == 255).all()
    assert (flats[120:230, 120:280] != 255).any(axis=2).all()
    assert [p.bbox for p in result.panels] == [(100, 100, 200, 150)]
    as_dicts = render_page(page, STYLE, FakeColorizer(), panels=[p.to_dict() for p in panels])
    assert np.array_equal(np.asarray(as_dicts.flats), flats)
    with pytest.raises(ValueError, match="bbox"):
        render_page(page, STYLE, FakeColorizer(), panels=[{"polygon": [[0, 0], [5, 0], [5, 5]]}])
    with pytest.raises(ValueError, match="panel 0 .* lies outside the 600x850 page"):
        render_page(page, STYLE, FakeColorizer(), panels=[{"bbox": [900, 900, 50, 50]}])
    # A user who removed every panel gets the line art back, and the model is not called.
    fake = FakeColorizer()
    bare = render_page(page, STYLE, fake, panels=[])
    assert fake.calls == [] and bare.panels == []
    assert np.array_equal(np.asarray(bare.composite), np.asarray(page))


def test_progress_and_cancellation(page):
    seen = []
    render_page(page, STYLE, FakeColorizer(), on_panel=lambda d, t: seen.append((d, t)))
    assert seen == [(i, len(BOXES)) for i in range(1, len(BOXES) + 1)]

    fake = FakeColorizer()
    checks = iter([False, True])
    with pytest.raises(Cancelled, match="before colouring"):
        render_page(page, STYLE, fake, should_stop=lambda: next(checks))
    assert fake.calls == []

    progress = []
    checks = iter([False, False, False, False, True])
    with pytest.raises(Cancelled, match="at panel 3"):
        render_page(page, STYLE, FakeColorizer(), should_stop=lambda: next(checks),
                    on_panel=lambda d, t: progress.append(d))
    assert progress == [1, 2]


def test_page_from_bytes_times_decode_and_bad_bytes_fail_clearly(page):
    buf = io.BytesIO()
    page.save(buf, "PNG")
    result = render_page(buf.getvalue(), STYLE, FakeColorizer())
    assert result.timings["decode"] > 0
    with pytest.raises(ImageError, match="not a recognised image"):
        render_page(b"not an image at all", STYLE, FakeColorizer())


def test_colorizer_returning_the_wrong_count_is_an_error(page):
    class Broken(FakeColorizer):
        def colorize_batch(self, sketches, styles, hints=None, size=512, seed=None):
            return super().colorize_batch(sketches, styles, hints, size, seed)[:-1]

    with pytest.raises(RuntimeError, match=f"returned {len(BOXES) - 1} images for {len(BOXES)} panels"):
        render_page(page, STYLE, Broken())


def test_detect_and_work_dimensions(page):
    assert [p.order for p in detect(page, "rtl")] == list(range(len(BOXES)))
    assert work_dimensions((1000, 500), 512) == (512, 256)
    assert work_dimensions((300, 600), 512) == (256, 512)


def test_pipeline_with_the_real_colorizer_from_tiny_random_networks(page):
    colorizer_module = pytest.importorskip("models.colorizer")
    pytest.importorskip("torch")
    from tests.testkit import tiny_nets

    colorizer = colorizer_module.Colorizer(*tiny_nets(), device="cpu", model_version="tiny-random")
    assert isinstance(colorizer, PanelColorizer)
    small = page.resize((300, 425))
    result = render_page(small, STYLE, colorizer, work_size=64, seed=0,
                         panel_hints={0: [{"x": 60, "y": 60, "color": "#ff0000"}]})
    lines = np.asarray(small.convert("L"))
    assert result.composite.size == small.size and result.model_version == "tiny-random"
    assert len(result.panels) == len(BOXES)
    assert (np.asarray(result.composite)[lines == 0] == 0).all()
    outside = ~inside_any_panel(lines.shape, [p.bbox for p in result.panels])
    assert (np.asarray(result.flats)[outside] == 255).all()


def test_model_sees_only_its_panel():
    # Touching panels: each crop's margin holds the neighbour's frame, which must be blanked.
    boxes = grid_boxes([2, 2], gutter=0)
    fake = FakeColorizer()
    render_page(draw_page(boxes), STYLE, fake, margin=20)
    for sketch in fake.calls[0]["sketches"]:
        arr = np.asarray(sketch)
        ring = np.concatenate([arr[:8].ravel(), arr[-8:].ravel(), arr[:, :8].ravel(), arr[:, -8:].ravel()])
        assert (ring == 255).all()
        assert (arr[20:-20, 20:-20] < 128).any()  # the panel's own frame and drawing are there


def test_the_three_stages_give_what_render_page_gives(page):
    from panelpaint.pages import FinishOptions, PanelFinish, colour_pages, finish_page, prepare_page

    whole = render_page(page, STYLE, FakeColorizer(), seed=5)
    prepared = prepare_page(page, STYLE)
    assert [p.to_dict() for p in prepared.panels] == [p.to_dict() for p in whole.panels]
    assert prepared.geometry()["size"] == list(page.size) and len(prepared.geometry()["boxes"]) == len(BOXES)
    (colours,) = colour_pages([prepared], FakeColorizer())
    # Finishing from plain arrays and the JSON geometry, as the io worker does with what is handed to it.
    finishes = [PanelFinish.from_json(f) for f in prepared.geometry()["finishes"]]
    staged = finish_page(np.asarray(page.convert("L")), prepared.panels, prepared.boxes,
                         [np.asarray(c) for c in colours], finishes=finishes, options=FinishOptions(seed=5))
    assert np.array_equal(np.asarray(staged.composite), np.asarray(whole.composite))
    assert np.array_equal(np.asarray(staged.flats), np.asarray(whole.flats))
    with pytest.raises(ValueError, match="do not match"):
        finish_page(np.asarray(page.convert("L")), prepared.panels, prepared.boxes, colours[:-1])


def test_panels_of_several_pages_share_one_colorizer_call(page):
    from panelpaint.pages import colour_pages, prepare_page

    other = draw_page(grid_boxes([1, 2]), seed=2)
    first, second = prepare_page(page, STYLE), prepare_page(other, STYLE)
    fake = FakeColorizer()
    a, b = colour_pages([first, second], fake, work_size=256)
    assert len(fake.calls) == 1 and fake.calls[0]["n"] == len(a) + len(b) == len(BOXES) + 3
    assert [im.size for im in a] == [s.size for s in first.sketches]
    assert [im.size for im in b] == [s.size for s in second.sketches]
    assert len(set(fake.calls[0]["style_ids"])) == 1  # one reference object: encoded once
    share = first.timings["model"] / second.timings["model"]
    assert share == pytest.approx(len(BOXES) / 3)  # the call's time split by panel count
