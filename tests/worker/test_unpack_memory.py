"""A real io worker's memory on hostile archives (issue #14, row 1): bounded by the largest page the
settings allow, not by the archive. Entries are streamed to storage in chunks and checked while
they inflate, so a ZIP of a few MB that unpacks to hundreds of MB costs the worker almost nothing.

The peak RSS is the pool child's own high-water mark (VmHWM, reset through /proc/PID/clear_refs
before the upload), so no sampling can miss it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import Stack, draw_page
from panelpaint import queue
from panelpaint.images import page_file_bytes_limit
from panelpaint.store import batches, uploads
from panelpaint.store.schema import Page, RunStatus, Upload
from tests.testkit import lie_about_size, wait_for, write_zip

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

MAX_PIXELS = 10_000_000
# The largest page the settings allow, decoded: 4 bytes a pixel (Pillow keeps RGB, RGBA and CMYK
# at 4 bytes a pixel, the widest it decodes our formats to). Unpacking must never cost more than
# this on top of a worker.
LARGEST_DECODED_PAGE = MAX_PIXELS * 4
MB = 1_000_000


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _unpack(stack: Stack, files: list[dict]) -> int:
    with stack.store.session() as s:
        batch = batches.create_batch(s, stack.studio_id, None, f"upload {len(files)}",
                                     default_style_id=stack.style_id)
        upload = uploads.create_upload(s, batch.id, files)
        upload_id, task_id = upload.id, upload.task_id
    queue.enqueue_unpack(stack.settings, upload_id, task_id)
    return upload_id


def _wait_upload(stack: Stack, upload_id: int) -> list[tuple[str, str, str | None]]:
    def state():
        with stack.store.session() as s:
            return s.get(Upload, upload_id).status

    wait_for(lambda: state() not in uploads.UNFINISHED, 180, f"upload {upload_id}",
             lambda: (state(), stack.log("io")[-3000:]))
    with stack.store.session() as s:
        upload = s.get(Upload, upload_id)
        assert upload.status == RunStatus.succeeded, upload.error
        pages = s.query(Page).filter(Page.batch_id == upload.batch_id).order_by(Page.position)
        return [(p.source_name, p.status.value, p.error) for p in pages]


def _wait_ingested(stack: Stack, upload_id: int) -> None:
    """Wait until the upload's readable pages have had their panels detected (their ingest ran in
    the same io child): so a measurement window holds them every time, never by a race."""
    with stack.store.session() as s:
        batch_id = s.get(Upload, upload_id).batch_id
        ids = [p.id for p in s.query(Page).filter(Page.batch_id == batch_id, Page.status != RunStatus.failed)]
    assert ids, f"upload {upload_id} left no readable page"
    for page_id in ids:
        wait_for(lambda: len(stack.panels(page_id)) > 0, 120, f"page {page_id}'s ingest",
                 lambda: stack.log("io")[-3000:])


def test_io_worker_memory_is_bounded_by_the_largest_page_whatever_the_archive(tmp_path):
    cap = page_file_bytes_limit(MAX_PIXELS)
    archive = write_zip(tmp_path / "hostile.cbz", {
        "001.png": draw_page(1),
        "002.png": 400 * MB,  # zeros, honest header: over the cap
        "003.png": 400 * MB,  # zeros, a header that claims 1,000 bytes
        "004.png": cap - 8 * MB,  # zeros under the cap: written to storage in chunks, then refused
        "005.png": draw_page(5),
    })
    lie_about_size(archive, "003.png", 1000)
    assert archive.stat().st_size < 5 * MB
    stack = Stack(tmp_path / "stack", tmp_path / "unused.safetensors", PANELPAINT_MAX_IMAGE_PIXELS=str(MAX_PIXELS),
                  PANELPAINT_TASK_SOFT_TIME_LIMIT="150", PANELPAINT_TASK_TIME_LIMIT="160",
                  PANELPAINT_VISIBILITY_TIMEOUT="400")
    try:
        stack.start_worker("io", queues="io", concurrency=1)
        (child,) = stack.pool_children("io")
        # A first small upload warms the child (database engine, first imports) before measuring.
        warm = _unpack(stack, [{"name": "warm.png", "key": stack.storage.put_bytes(draw_page(0), ".png")}])
        _wait_upload(stack, warm)
        # Its ingest too (panel detection's first imports), which would otherwise land in the window.
        _wait_ingested(stack, warm)
        Path(f"/proc/{child.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _status_kb(child.pid, "VmRSS") * 1024
        key = stack.storage.put_file(archive, ".cbz")
        hostile = _unpack(stack, [{"name": "hostile.cbz", "key": key, "archive": True, "pages": 5}])
        pages = _wait_upload(stack, hostile)
        _wait_ingested(stack, hostile)  # the two good pages' ingests: one decoded page at a time
        peak = _status_kb(child.pid, "VmHWM") * 1024
        assert stack.pool_children("io") == [child]  # the same child did the work and is alive
    finally:
        stack.close()
    growth = peak - before
    assert growth < LARGEST_DECODED_PAGE, \
        f"io worker grew by {growth / MB:.0f} MB unpacking a {archive.stat().st_size / MB:.1f} MB archive"
    assert [p[:2] for p in pages] == [("hostile.cbz/001.png", "queued"), ("hostile.cbz/002.png", "failed"),
                                      ("hostile.cbz/003.png", "failed"), ("hostile.cbz/004.png", "failed"),
                                      ("hostile.cbz/005.png", "queued")]
    assert "unpacks to 400,000,000 bytes" in pages[1][2] and "PANELPAINT_MAX_IMAGE_PIXELS" in pages[1][2]
    assert "cannot read entry" in pages[2][2]
    assert "not a recognised image" in pages[3][2]
