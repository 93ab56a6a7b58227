"""The panel check in the workers: a page whose detected layout is less sure than
PANELPAINT_PANEL_CHECK_BELOW (0.6 by default) waits uncoloured, whether its ingest or its render
detected the panels, until a person confirms its boxes; then it is coloured with them. A page of
clean frames goes straight on.

The tasks run in this process (`apply`) on a real Redis and job store.
"""
from __future__ import annotations

import io
import json

import pytest
import redis
from PIL import Image, ImageDraw

from harness import PAGE_SIZE, stack  # noqa: F401 (the `stack` fixture)
from panelpaint.store import panel_edits
from panelpaint.store.schema import Page, PanelCheck, RunStatus

pytestmark = [pytest.mark.redis]



def frameless_page() -> bytes:
    """A drawing with no frame: detection takes the page whole, unsure (confidence 0.45)."""
    img = Image.new("RGB", PAGE_SIZE, "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse([40, 60, 200, 220], outline="black", width=4)
    draw.line([30, 300, 220, 250], fill="black", width=3)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def finishing_queued(stack) -> int:
    return redis.Redis.from_url(stack.redis.url).llen("io")


def page_state(stack, page_id):
    with stack.store.session() as s:
        page = s.get(Page, page_id)
        return page.panel_check, page.status, page.layout_confidence, len(page.panels)


def confirm(stack, page_id):
    with stack.store.session() as s:
        return panel_edits.confirm_panels(s, page_id).id


def test_an_unsure_layout_found_at_ingest_holds_the_page_until_confirmed(stack):
    _, (render_id, framed) = stack.add_batch(["unsure.png", "framed.png"], {"unsure.png": frameless_page()},
                                             enqueue=False)
    page_id = stack.page_of(render_id).id
    assert stack.ingest_here(page_id)["panels"] == 1
    assert page_state(stack, page_id) == (PanelCheck.awaiting, RunStatus.queued, 0.45, 1)
    framed_page = stack.page_of(framed).id
    assert stack.ingest_here(framed_page)["panels"] == 4
    assert page_state(stack, framed_page) == (None, RunStatus.queued, 1.0, 4)
    assert stack.render_here(render_id) is None  # not claimed: nothing coloured, nothing to finish
    assert finishing_queued(stack) == 0 and stack.renders([render_id])[0].attempt == 0
    assert confirm(stack, page_id) == render_id
    done = stack.colour_here(render_id)
    assert done.status == RunStatus.succeeded, done.error
    # panels.json carries each panel's confidence, as detection stored it.
    (panel,) = json.loads(stack.storage.read_bytes(done.outputs["json"]))["panels"]
    assert panel["confidence"] == 0.45


def test_a_render_that_detects_an_unsure_layout_itself_steps_back_uncoloured(stack):
    _, (render_id,) = stack.add_batch(["first.png"], {"first.png": frameless_page()}, enqueue=False)
    page_id = stack.page_of(render_id).id
    result = stack.render_here(render_id)  # before the page's ingest: the render detects the panels
    assert result["status"] == "held" and finishing_queued(stack) == 0
    check, status, _, panels = page_state(stack, page_id)
    assert (check, status, panels) == (PanelCheck.awaiting, RunStatus.queued, 1)
    assert stack.renders([render_id])[0].status == RunStatus.queued
    confirm(stack, page_id)
    done = stack.colour_here(render_id)
    assert done.status == RunStatus.succeeded and done.attempt == 2, done.error
