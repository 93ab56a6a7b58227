"""Real worker processes over a real Redis: batches complete, and no fault loses or doubles a page.

One stack (private Redis, SQLite store, storage, tiny weights) and one shared worker serve the
module; the tests that kill things run last. Pages named "slow..." take PANEL_DELAY seconds per
panel while they are finished, pages named "stall..." as long per panel while they are coloured,
and pages named "poison..." make the worker SIGKILL itself (`fault_plugin`, loaded into the test
workers), so every fault lands mid-page, in the stage the test means.
"""
from __future__ import annotations

import io
import signal
import time

import pytest
import sqlalchemy as sa
from PIL import Image

from fault_plugin import Faults
from harness import PAGE_SIZE, Stack, draw_page
from tests.testkit import random_weights, wait_for
from panelpaint.flats import Background
from panelpaint import queue
from panelpaint.store import batches
from panelpaint.store.schema import RunStatus

pytestmark = [pytest.mark.redis, pytest.mark.slow]

S, F, C = RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled
PANEL_DELAY = 0.6


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stack")
    st = Stack(directory, random_weights(directory / "tiny.safetensors"),
               Faults(panel_delay=PANEL_DELAY, kill_page="poison"))
    st.start_worker("a", concurrency=2)
    yield st
    st.close()


def assert_one_result(stack: Stack, render) -> None:
    """Succeeded once (one success event), outputs stored, the composite at the page's native size."""
    assert render.status == S, (render.status, render.error)
    assert len(stack.events("render.succeeded", render.id)) == 1
    assert {"composite", "flats", "lines", "psd", "ora", "json", "preview"} <= set(render.outputs)
    with Image.open(io.BytesIO(stack.storage.read_bytes(render.outputs["composite"]))) as img:
        assert img.size == PAGE_SIZE
    assert render.model_version.startswith("test-tiny")
    assert render.worker and render.worker.endswith("@test")
    assert render.timings["model"] > 0 and render.timings["encode"] > 0


def test_a_batch_completes(stack):
    _, ids = stack.add_batch([f"page-{i}.png" for i in range(4)])
    for render in stack.wait_final(ids, 90):
        assert_one_result(stack, render)
        page = stack.page_of(render.id)
        assert page.status == S and page.panels_done == page.panels_total == 4
        assert len(stack.panels(page.id)) == 4  # the detected panels are kept for per-panel review
        # The style reference travelled with the colours to the finishing worker, which matched it.
        assert "matching" in render.timings
    workers = queue.live_workers(stack.settings, timeout=1.0)
    assert [w["name"] for w in workers] == ["a@test"] and set(workers[0]["queues"]) == {"render", "io"}


def test_ingest_detects_and_stores_panels(stack):
    _, (render_id,) = stack.add_batch(["ingest.png"], enqueue=False)
    page_id = stack.page_of(render_id).id
    queue.enqueue_ingest(stack.settings, page_id)
    wait_for(lambda: len(stack.panels(page_id)) == 4, 60, "panels to be detected")
    boxes = sorted((p.y, p.x) for p in stack.panels(page_id))
    assert boxes[0] < boxes[-1] and stack.page_of(render_id).panels_total == 4


def test_a_render_whose_message_the_broker_lost_is_requeued_by_the_sweep(stack):
    from panelpaint.store import renders

    _, (render_id,) = stack.add_batch(["lost.png"], enqueue=False)  # no message anywhere
    with stack.store.session() as s:  # a worker claimed it, then vanished together with its message
        renders.claim_render(s, render_id, "ghost@elsewhere", 3)
    (render,) = stack.wait_final([render_id], 90)  # heartbeat older than the visibility timeout (20 s)
    assert_one_result(stack, render)
    assert render.attempt == 2 and render.worker == "a@test"


def test_a_queued_render_whose_message_was_never_sent_is_sent_by_the_sweep(stack):
    # Queued while the broker was down: the job store has it, Redis never heard of it.
    _, (render_id,) = stack.add_batch(["unsent.png"], enqueue=False)
    (render,) = stack.wait_final([render_id], 90)  # queued longer than the visibility timeout (20 s)
    assert_one_result(stack, render)
    assert render.attempt == 1
    (resent,) = stack.events("render.resent", render_id)
    assert resent["task_id"] == render.task_id


def test_an_archive_is_unpacked_by_the_io_worker_and_its_pages_complete(stack):
    import zipfile

    from panelpaint.store import uploads
    from panelpaint.store.schema import Page

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in (2, 1, 3):
            zf.writestr(f"ch/page{i}.png", draw_page(i))
        zf.writestr("ch/broken.png", b"not an image")
    key = stack.storage.put_bytes(buf.getvalue(), ".cbz")
    batch_id, _ = stack.add_batch([], enqueue=False)
    with stack.store.session() as s:
        upload = uploads.create_upload(s, batch_id, [{"name": "ch.cbz", "key": key, "archive": True, "pages": 4}])
        upload_id, task_id = upload.id, upload.task_id
    queue.enqueue_unpack(stack.settings, upload_id, task_id)

    def pages():
        with stack.store.session() as s:
            rows = list(s.scalars(sa.select(Page).where(Page.batch_id == batch_id).order_by(Page.position)))
            for p in rows:
                s.expunge(p)
            return rows

    wait_for(lambda: len(pages()) == 4, 60, "the archive's pages")
    assert [p.source_name for p in pages()] == ["ch.cbz/broken.png", "ch.cbz/page1.png", "ch.cbz/page2.png",
                                                "ch.cbz/page3.png"]  # natural order
    ids = [p.current_render_id for p in pages() if p.current_render_id]
    assert len(ids) == 3 and "not a recognised image" in pages()[0].error
    for render in stack.wait_final(ids, 90):
        assert_one_result(stack, render)
    wait_for(lambda: all(p.prepared for p in pages()[1:]), 30, "the ingest of each page")


def test_an_upload_whose_message_was_lost_is_sent_again_by_the_sweep(stack):
    from panelpaint.store import uploads
    from panelpaint.store.schema import Upload

    batch_id, _ = stack.add_batch([], enqueue=False)
    key = stack.storage.put_bytes(draw_page(7), ".png")
    with stack.store.session() as s:  # stored, but the broker never heard of it
        upload_id = uploads.create_upload(s, batch_id, [{"name": "lost.png", "key": key}]).id

    def status():
        with stack.store.session() as s:
            return s.get(Upload, upload_id).status

    wait_for(lambda: status() == RunStatus.succeeded, 90, "the sweep to send the upload")  # > visibility (20 s)


def test_pending_task_ids_sees_waiting_messages(stack):
    queue.client(stack.settings).send_task("panelpaint.nothing", args=[], queue="nobody-consumes",
                                           task_id="waiting-task")
    assert "waiting-task" in queue.pending_task_ids(stack.settings, queues=("nobody-consumes",))
    assert "waiting-task" not in queue.pending_task_ids(stack.settings)


def test_a_panel_re_render_recolours_only_that_panel_and_becomes_the_pages_result(stack):
    import numpy as np

    from panelpaint.panels import Panel as PagePanel
    from panelpaint.store import renders, styles

    _, (base_id,) = stack.add_batch(["panels.png"])
    (base,) = stack.wait_final([base_id], 90)
    assert_one_result(stack, base)
    page = stack.page_of(base_id)
    target = stack.panels(page.id)[1]
    key = stack.storage.put_bytes(style_png_of((40, 200, 90), (230, 40, 160)), ".png")
    with stack.store.session() as s:
        green = styles.add_style_reference(s, stack.studio_id, "green", [], key, 96, 96)
        green.background = Background.COLOURED  # the panel's whole inside takes the new colours: easy to see
        s.flush()
        render = renders.rerender(s, page.id, target.id, style_id=green.id, seed=12345)
        panel_render_id, task_id = render.id, render.task_id
    queue.enqueue_render(stack.settings, panel_render_id, task_id)
    (done,) = stack.wait_final([panel_render_id], 90)
    assert_one_result(stack, done)
    assert done.degraded is None and done.panel_id == target.id
    assert stack.events("render.succeeded", panel_render_id)[0]["based_on"] == base_id
    assert len(stack.events("render.succeeded", base_id)) == 1
    assert stack.page_of(base_id).current_render_id == panel_render_id  # the merged page is the result

    def pixels(render, kind="composite"):
        with Image.open(io.BytesIO(stack.storage.read_bytes(render.outputs[kind]))) as img:
            return np.asarray(img.convert("RGB"))

    inside = PagePanel((target.x, target.y, target.w, target.h), target.polygon, target.position).mask(PAGE_SIZE) > 0
    before, after = pixels(base), pixels(done)
    assert np.array_equal(before[~inside], after[~inside])  # other panels and gutters: byte-identical
    assert np.array_equal(pixels(base, "flats")[~inside], pixels(done, "flats")[~inside])
    # Recoloured (the tiny random test model reacts only faintly to a style: small but real changes).
    assert (before[inside] != after[inside]).any(axis=1).mean() > 0.5


def test_a_panel_re_render_without_a_base_result_colours_the_whole_page_and_says_so(stack):
    from panelpaint.store import renders
    from panelpaint.store.schema import Render

    _, (base_id,) = stack.add_batch(["no-flats.png"])
    stack.wait_final([base_id], 90)
    page = stack.page_of(base_id)
    panel_id = stack.panels(page.id)[0].id
    with stack.store.session() as s:  # a result without flats (e.g. a batch that chose no PNG output)
        base = s.get(Render, base_id)
        base.outputs = {k: v for k, v in base.outputs.items() if k != "flats"}
        render = renders.rerender(s, page.id, panel_id, seed=7)
        render_id, task_id = render.id, render.task_id
    queue.enqueue_render(stack.settings, render_id, task_id)
    (done,) = stack.wait_final([render_id], 90)
    assert_one_result(stack, done)
    assert "whole page was coloured" in done.degraded
    assert stack.events("render.succeeded", render_id)[0]["based_on"] is None
    assert stack.page_of(render_id).current_render_id == render_id


def style_png_of(background, disc) -> bytes:
    from PIL import ImageDraw

    img = Image.new("RGB", (96, 96), background)
    ImageDraw.Draw(img).ellipse([20, 20, 70, 70], fill=disc)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_bad_input_fails_alone_without_retry(stack):
    sources = {"broken.png": b"this is not an image at all"}
    _, ids = stack.add_batch(["good-1.png", "broken.png", "good-2.png"], sources)
    good1, broken, good2 = stack.wait_final(ids, 90)
    assert broken.status == F and "not a recognised image" in broken.error
    assert broken.attempt == 1  # bad input is not retried
    assert stack.page_of(broken.id).error == broken.error
    assert_one_result(stack, good1)
    assert_one_result(stack, good2)


def test_poison_page_that_kills_its_worker_gives_up_after_max_attempts(stack):
    _, ids = stack.add_batch(["poison.png", "fine.png"])
    poison, fine = stack.wait_final(ids, 90)
    assert poison.status == F and poison.error.startswith("gave up after 3 attempts")
    assert poison.attempt == 3
    assert_one_result(stack, fine)
    assert stack.workers["a"].poll() is None  # the worker itself survived every crash of its child


def _running(stack: Stack, render_id: int, min_done: int = 1) -> bool:
    """Finishing, with at least `min_done` panels composited."""
    (render,) = stack.renders([render_id])
    return render.status == RunStatus.running and stack.page_of(render_id).panels_done >= min_done


def _colouring(stack: Stack, render_id: int) -> bool:
    """Claimed by a render worker and not yet handed to finishing (the hand-off logs render.coloured)."""
    (render,) = stack.renders([render_id])
    return render.status == RunStatus.running and not stack.events("render.coloured", render_id)


def test_cancel_revokes_queued_and_stops_running_at_the_next_panel(stack):
    batch_id, ids = stack.add_batch([f"slow-{i}.png" for i in range(4)])
    wait_for(lambda: any(_running(stack, r) for r in ids), 60, "a render to start")
    with stack.store.session() as s:
        task_ids = batches.cancel_batch(s, batch_id)
    queue.revoke(stack.settings, task_ids)
    finals = stack.wait_final(ids, 60)
    assert all(r.status == C for r in finals), [(r.id, r.status) for r in finals]
    stopped = [r for r in finals if r.attempt > 0]
    assert stopped, "some render was running when the batch was cancelled"
    for r in stopped:  # stopped at a panel boundary, before the end of the page
        assert stack.page_of(r.id).panels_done < 4 and not r.outputs
    never_ran = [r for r in finals if r.attempt == 0]
    assert never_ran and {r.task_id for r in never_ran} <= set(task_ids)


def test_sigkill_of_the_pool_child_while_colouring_redelivers_the_page(stack):
    _, ids = stack.add_batch(["stall-kill.png"])
    wait_for(lambda: _colouring(stack, ids[0]), 60, "the render to start colouring")
    for child in stack.pool_children("a"):
        child.send_signal(signal.SIGKILL)
    (render,) = stack.wait_final(ids, 90)
    assert_one_result(stack, render)
    assert render.attempt == 2
    claims = stack.events("render.claimed", render.id)
    assert len(claims) == 2 and claims[1]["takeover"] is True


def test_sigkill_of_the_pool_child_while_finishing_redelivers_the_finishing(stack):
    _, ids = stack.add_batch(["slow-kill.png"])
    wait_for(lambda: _running(stack, ids[0]), 60, "the render to be finishing")
    for child in stack.pool_children("a"):
        child.send_signal(signal.SIGKILL)
    (render,) = stack.wait_final(ids, 90)
    # The finishing task went back to the queue and ran again for the same attempt, or, when the
    # pool took longer than the lease (4 s here) to start new children, the janitor took the
    # finishing over (attempt 2): either way the colours handed off by the render worker were
    # not lost, and the page was claimed and coloured only once.
    assert_one_result(stack, render)
    assert render.attempt in (1, 2) and len(stack.events("render.claimed", render.id)) == 1
    assert len(stack.events("render.coloured", render.id)) == 1


def test_redis_restart_mid_batch_loses_nothing(stack):
    _, ids = stack.add_batch(["slow-r1.png", "r2.png", "slow-r3.png", "r4.png", "r5.png"])
    wait_for(lambda: any(_running(stack, r) for r in ids), 60, "a render to start")
    stack.redis.stop()  # SIGTERM: redis-server writes its append-only file and exits
    time.sleep(2)
    stack.redis.start()
    for render in stack.wait_final(ids, 150):
        assert_one_result(stack, render)


def test_whole_worker_killed_mid_page_another_takes_over(stack):
    stack.start_worker("b", concurrency=1)
    _, ids = stack.add_batch(["stall-k1.png", "stall-k2.png"])
    wait_for(lambda: any(_colouring(stack, r) for r in ids), 60, "a render to start colouring")
    (victim,) = [r for r in stack.renders(ids) if _colouring(stack, r.id)][:1]
    name = victim.worker.split("@")[0]
    stack.kill_worker(name)
    survivor = "b" if name == "a" else "a"
    t0 = time.monotonic()
    finals = stack.wait_final(ids, 120)
    took = time.monotonic() - t0
    for render in finals:
        assert_one_result(stack, render)
    (taken_over,) = [r for r in finals if r.id == victim.id]
    assert taken_over.attempt == 2 and taken_over.worker == f"{survivor}@test"
    # Redelivery waits for the visibility timeout (20 s here), then at most one sweep interval.
    assert took < 20 + 30
