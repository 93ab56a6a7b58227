"""A batch's rate: the throughput of its own finished page renders (parallel workers count
together), over its most recent pages; on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

from panelpaint.store import batches, renders
from panelpaint.store.rates import batch_rate
from panelpaint.store.schema import Render

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def finished_page(store, batch_id, name, start, end):
    """A page of the batch whose render ran from T0 + start to T0 + end seconds."""
    with store.session() as s:
        page = batches.add_page(s, batch_id, name, "a" * 64 + ".png", 100, 80)
        rid = renders.queue_new_page(s, page.id).id
    with store.session() as s:
        claim = renders.claim_render(s, rid, "w", 3)
        renders.complete_render(s, rid, claim.attempt, {"composite": "c" * 64 + ".png"})
    with store.session() as s:
        r = s.get(Render, rid)
        r.started_at, r.finished_at = T0 + dt.timedelta(seconds=start), T0 + dt.timedelta(seconds=end)


def test_rate_counts_workers_together_over_the_recent_window(store, world):
    with store.session() as s:
        assert batch_rate(s, world.a.batch) is None  # nothing finished yet
    # Two workers: two pages side by side in 0-10 s, a third in 10-20 s.
    for name, start, end in (("a", 0, 10), ("b", 0, 10), ("c", 10, 20)):
        finished_page(store, world.a.batch, name, start, end)
    with store.session() as s:
        rate = batch_rate(s, world.a.batch)
        recent = batch_rate(s, world.a.batch, window=1)
        other = batch_rate(s, world.b.batch)
    assert (rate.pages, rate.seconds, rate.page_seconds) == (3, 20.0, 10.0)
    assert abs(rate.seconds_per_page - 20 / 3) < 1e-9 and abs(rate.eta_seconds(6) - 40.0) < 1e-9
    assert (recent.pages, recent.seconds) == (1, 10.0)  # only the last page, 10-20 s
    assert other is None  # another batch's pages never count
