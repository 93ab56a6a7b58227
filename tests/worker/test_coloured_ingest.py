"""Ingest skips a page that arrives already coloured (its render is never run), unless the batch
says to colour such pages anyway. The tasks run in this process (`apply`) on a real Redis."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from harness import draw_page, stack  # noqa: F401 (the `stack` fixture)
from panelpaint.store.schema import RunStatus

pytestmark = [pytest.mark.redis]



def coloured_page() -> bytes:
    """A drawn page whose paper inside the left half is painted sky blue, as a coloured page is."""
    page = np.asarray(Image.open(io.BytesIO(draw_page(5))).convert("RGB")).copy()
    left = page[:, : page.shape[1] // 2]
    left[left.min(axis=2) > 200] = (110, 170, 230)
    buf = io.BytesIO()
    Image.fromarray(page).save(buf, "PNG")
    return buf.getvalue()


def test_a_coloured_page_is_skipped_and_line_art_is_not(stack):
    _, (coloured, lines) = stack.add_batch(["colour.png", "lines.png"], {"colour.png": coloured_page()},
                                           enqueue=False)
    coloured_page_id, lines_page_id = stack.page_of(coloured).id, stack.page_of(lines).id
    assert stack.ingest_here(coloured_page_id) == {"page_id": coloured_page_id, "status": "skipped"}
    assert stack.ingest_here(lines_page_id)["panels"] == 4
    assert stack.page_of(coloured).status == RunStatus.skipped
    assert stack.page_of(lines).status == RunStatus.queued
    # The skipped page's render message finds nothing to do: no colouring, no finishing queued.
    stack.render_here(coloured)
    assert stack.renders([coloured])[0].status == RunStatus.skipped
    assert stack.broker_state()["queues"].get("io", 0) == 0


def test_a_batch_may_colour_them_anyway(stack):
    _, (coloured,) = stack.add_batch(["colour.png"], {"colour.png": coloured_page()}, enqueue=False,
                                     options={"colour_anyway": True})
    page_id = stack.page_of(coloured).id
    assert stack.ingest_here(page_id)["panels"] >= 1
    assert stack.colour_here(coloured).status == RunStatus.succeeded
