"""Panels of consecutive pages with the same style are coloured in one forward pass, and a bad or
poison page among them still fails alone.

The first tests run the tasks in this process (`apply`) on a real Redis and job store, so the
grouping is exact; the last one runs real worker processes with a page that kills its worker.
"""
from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from fault_plugin import Faults
from harness import Stack, style_png
from tests.testkit import random_weights, wait_for
from panelpaint import pages
from panelpaint.settings import get_settings
from panelpaint.store import renders
from panelpaint.store.schema import RunStatus

pytestmark = [pytest.mark.redis]


@pytest.fixture
def batching(tmp_path, monkeypatch):
    """A stack whose settings (in this process) colour up to 3 pages per pass."""
    stack = Stack(tmp_path, random_weights(tmp_path / "tiny.safetensors"))
    stack.bind_settings(monkeypatch, PANELPAINT_RENDER_BATCH_PAGES="3")
    try:
        yield stack
    finally:
        stack.close()


def test_following_pages_with_the_same_style_share_one_forward_pass(batching):
    stack = batching
    names = [f"page-{i}.png" for i in range(5)]
    other = stack.add_style("other")  # page 2 has a style of its own: it is not taken along
    _, ids = stack.add_batch(names, enqueue=False, page_styles={"page-2.png": other})
    out = stack.render_here(ids[0])
    assert out["pages"] == {ids[0]: "handed_off", ids[1]: "handed_off", ids[3]: "handed_off"}
    (event,) = stack.events("render.coloured", ids[0])
    assert event["together"] == [ids[0], ids[1], ids[3]] and event["panels"] == 12
    assert stack.events("render.coloured", ids[1]) == [event]
    handoffs = [args[2] for args in stack.finish_here(3)]
    assert not any(stack.storage.exists(k) for k in handoffs)  # each hand-off is deleted once finished
    first, second, third, fourth, fifth = stack.renders(ids)
    assert first.status == second.status == fourth.status == RunStatus.succeeded
    assert third.status == fifth.status == RunStatus.queued  # left for their own messages

    # The own message of a page that was taken along finds it done and does nothing.
    assert stack.render_here(ids[1]) is None
    assert len(stack.events("render.claimed", ids[1])) == 1

    # Coloured together or alone, a page comes out the same.
    from worker import resources

    with Image.open(io.BytesIO(stack.storage.read_bytes(second.outputs["composite"]))) as img:
        batched = np.asarray(img.convert("RGB"), np.int16)
    alone = pages.render_page(Image.open(io.BytesIO(stack.storage.read_bytes(stack.page_of(ids[1]).source_key))),
                              Image.open(io.BytesIO(style_png())), resources.current().runtime.colorizer.model,
                              panels=[{"bbox": [p.x, p.y, p.w, p.h], "polygon": p.polygon, "order": p.position}
                                      for p in stack.panels(second.page_id)],
                              work_size=get_settings().effective_work_size())
    diff = np.abs(batched - np.asarray(alone.composite, np.int16))
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_a_bad_page_among_batched_pages_fails_alone(batching):
    stack = batching
    _, ids = stack.add_batch(["good-a.png", "broken.png", "good-b.png"], {"broken.png": b"not an image"},
                             enqueue=False)
    out = stack.render_here(ids[0])
    assert out["pages"] == {ids[0]: "handed_off", ids[1]: "failed", ids[2]: "handed_off"}
    stack.finish_here(2)
    good_a, broken, good_b = stack.renders(ids)
    assert good_a.status == good_b.status == RunStatus.succeeded
    assert broken.status == RunStatus.failed and "not a recognised image" in broken.error and broken.attempt == 1


def test_only_first_attempts_are_batched(batching):
    stack = batching
    _, ids = stack.add_batch(["retried.png", "next.png"], enqueue=False)
    with stack.store.session() as s:  # a worker claimed the second page once and died
        claim = renders.claim_render(s, ids[1], "ghost@elsewhere", 3)
        renders.fail_render(s, ids[1], claim.attempt, "worker lost", retryable=True)
    out = stack.render_here(ids[0])
    assert out["pages"] == {ids[0]: "handed_off"}
    assert stack.renders(ids)[1].status == RunStatus.queued
    stack.finish_here(1)

    _, ids = stack.add_batch(["retried.png", "fresh.png"], enqueue=False)
    with stack.store.session() as s:  # now the first page is the one tried before
        claim = renders.claim_render(s, ids[0], "ghost@elsewhere", 3)
        renders.fail_render(s, ids[0], claim.attempt, "worker lost", retryable=True)
    out = stack.render_here(ids[0])
    assert out["pages"] == {ids[0]: "handed_off"}  # a second attempt takes no companions
    assert stack.renders(ids)[1].status == RunStatus.queued


def test_a_render_worker_waits_while_the_io_queue_is_backed_up(batching, monkeypatch):
    from panelpaint import queue

    stack = batching
    monkeypatch.setenv("PANELPAINT_IO_BACKLOG", "1")
    get_settings.cache_clear()
    _, ids = stack.add_batch(["a.png", "b.png", "c.png"], enqueue=False)
    worker = threading.Thread(target=lambda: stack.render_here(ids[0]))
    worker.start()

    def io_length() -> int:
        return queue.queue_lengths(stack.settings)["io"]

    wait_for(lambda: io_length() == 3, 60, "three pages handed to finishing")
    time.sleep(1.0)
    assert worker.is_alive()  # three finishing tasks wait, more than the backlog of 1: no new page
    stack.finish_here(2)
    worker.join(5)
    assert not worker.is_alive()  # back under the backlog: the render worker goes on
    stack.finish_here(1)
    assert {r.status for r in stack.renders(ids)} == {RunStatus.succeeded}


def test_a_poison_page_batched_with_others_costs_them_one_attempt_at_most(tmp_path):
    stack = Stack(tmp_path, random_weights(tmp_path / "tiny.safetensors"), Faults(kill_page="poison"),
                  PANELPAINT_RENDER_BATCH_PAGES="3")
    try:
        stack.start_worker("a", concurrency=1)
        names = ["p0.png", "poison.png", "p2.png", "p3.png", "p4.png"]
        _, ids = stack.add_batch(names)
        finals = dict(zip(names, stack.wait_final(ids, 150)))
        poison = finals.pop("poison.png")
        assert poison.status == RunStatus.failed and poison.error.startswith("gave up after 3 attempts")
        for name, render in finals.items():
            assert render.status == RunStatus.succeeded, (name, render.status, render.error)
            assert len(stack.events("render.succeeded", render.id)) == 1
            assert render.attempt <= 2, name
        # The pages after the poison page were still coloured together, in passes of several pages.
        passes = [e["together"] for r in finals.values() for e in stack.events("render.coloured", r.id)]
        assert any(len(t) > 1 for t in passes), passes
    finally:
        stack.close()
