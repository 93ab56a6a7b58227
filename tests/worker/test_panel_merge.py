"""Panel re-renders of two panels of one page at the same time: neither change is lost.

Both are coloured against the same finished page; when the first completes (and becomes the
page's result), the finishing of the second merges its panel onto that newer result.
The tasks run in this process (`apply`), on a real Redis and job store, so the order is exact.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from harness import PAGE_SIZE, Stack
from tests.testkit import random_weights
from panelpaint.flats import Background
from panelpaint.panels import Panel as PagePanel
from panelpaint.store import renders, styles
from panelpaint.store.schema import RunStatus

pytestmark = [pytest.mark.redis]


def solid_style_png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), colour).save(buf, "PNG")
    return buf.getvalue()


def test_two_panel_re_renders_at_once_both_reach_the_page(tmp_path, monkeypatch):
    stack = Stack(tmp_path, random_weights(tmp_path / "tiny.safetensors"))
    try:
        stack.bind_settings(monkeypatch)
        _, (base_id,) = stack.add_batch(["two-panels.png"], enqueue=False)
        stack.colour_here(base_id)
        page_id = stack.page_of(base_id).id
        first, second = stack.panels(page_id)[:2]
        with stack.store.session() as s:
            ids = []
            for panel, colour in ((first, (40, 200, 90)), (second, (60, 60, 220))):
                key = stack.storage.put_bytes(solid_style_png(colour), ".png")
                style = styles.add_style_reference(s, stack.studio_id, f"style {colour}", [], key, 96, 96)
                style.background = Background.COLOURED  # the whole panel takes the new colour: easy to see
                s.flush()
                ids.append(renders.rerender(s, page_id, panel.id, style_id=style.id, seed=99).id)
        a, b = ids
        # Both are coloured (seeing the base page as the result) before either is finished.
        stack.render_here(a)
        stack.render_here(b)
        finished = stack.finish_here(2)
        assert [args[0] for args in finished] == [a, b]

        base, done_a, done_b = stack.renders([base_id, a, b])
        assert done_a.status == done_b.status == RunStatus.succeeded
        assert stack.page_of(base_id).current_render_id == b
        assert stack.events("render.succeeded", b)[0]["based_on"] == a

        def pixels(render):
            with Image.open(io.BytesIO(stack.storage.read_bytes(render.outputs["composite"]))) as img:
                return np.asarray(img.convert("RGB"))

        def mask(p):
            return PagePanel((p.x, p.y, p.w, p.h), p.polygon, p.position).mask(PAGE_SIZE) > 0

        in_a, in_b = mask(first), mask(second)
        shown, old, merged_a = pixels(done_b), pixels(base), pixels(done_a)
        outside = ~(in_a | in_b)
        assert np.array_equal(shown[outside], old[outside])
        assert np.array_equal(shown[in_a], merged_a[in_a])  # the first panel's change is kept
        assert (shown[in_b] != old[in_b]).any(axis=1).mean() > 0.5  # and the second panel is new
    finally:
        stack.close()
