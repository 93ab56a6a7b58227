"""One panel shape and one pixel convention from the job store to the page pipeline."""
from __future__ import annotations

import numpy as np

from panelpaint.panels import Panel
from panelpaint.store import batches, work


def test_a_stored_panel_covers_exactly_its_box_in_the_pipeline(store, world):
    """A panel stored with only its box (x, y, w, h) and read back by the pipeline covers its w x h
    pixels, no more and no fewer (the store once closed the rectangle at x + w, one pixel too far)."""
    page_id = world.a.pages[0]  # 100 x 80
    with store.session() as s:
        batches.set_panels(s, page_id, [{"bbox": [10, 20, 30, 40]}])
        stored = work.page(s, page_id).panel_dicts()
    (panel,) = [Panel.from_dict(d) for d in stored]
    inside = panel.mask((100, 80)) > 0
    assert inside.sum() == 30 * 40
    ys, xs = np.nonzero(inside)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (10, 40, 20, 60)
