"""The torch-free queue client: configuration, enqueue by name onto the right queue, queue lengths."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import redis

from panelpaint import queue


def test_importing_the_client_pulls_in_neither_torch_nor_celery():
    code = "import sys, panelpaint.queue; print(sorted(m for m in ('torch', 'celery', 'worker') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


RACE = """
import threading
from panelpaint import queue
from panelpaint.settings import load_settings
settings, errors = load_settings(), []
start = threading.Barrier(16)
def first_send():
    start.wait()
    try:
        queue.client(settings)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_send) for _ in range(16)]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors[:1])
"""


def test_a_processs_first_sends_at_once_all_get_the_client():
    """A dashboard process's first requests send at the same moment: Celery's lazy package, imported
    by two threads at once, answered one of them "cannot import name 'Celery'" (about one fresh
    process in two), and that request's pages stayed queued until the janitor's full sweep."""
    for _ in range(6):
        out = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "[]", out


def test_visibility_timeout_is_identical_everywhere(settings):
    conf = queue.celery_config(settings)
    assert conf["broker_transport_options"]["visibility_timeout"] == settings.visibility_timeout
    assert conf["result_backend_transport_options"]["visibility_timeout"] == settings.visibility_timeout
    assert conf["visibility_timeout"] == settings.visibility_timeout
    assert settings.visibility_timeout >= 2 * conf["task_time_limit"]
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1 and conf["task_serializer"] == "json"


def _bodies(url: str, name: str) -> list[dict]:
    """The messages waiting in a queue, in the order a worker takes them (highest priority first)."""
    conn = redis.Redis.from_url(url)
    raw = [json.loads(m) for key in queue.priority_keys(name) for m in reversed(conn.lrange(key, 0, -1))]
    return [{"headers": m["headers"], "body": json.loads(base64.b64decode(m["body"]))} for m in raw]


def test_enqueue_goes_to_the_named_task_on_its_queue(settings, redis_server):
    settings = settings.model_copy(update={"redis_url": redis_server.url})
    assert queue.queue_lengths(settings) == {"render": 0, "io": 0}
    task_id = queue.enqueue_render(settings, 42, "made-by-the-store")
    assert task_id == "made-by-the-store"
    queue.enqueue_ingest(settings, 7)
    queue.enqueue_finish(settings, 42, 3, "k")
    assert queue.queue_lengths(settings) == {"render": 1, "io": 2}
    (render,) = _bodies(redis_server.url, "render")
    assert render["headers"]["task"] == queue.TASK_RENDER and render["headers"]["id"] == task_id
    assert render["body"][0] == [42]  # ids only, never objects
    io_tasks = {m["headers"]["task"]: m["body"][0] for m in _bodies(redis_server.url, "io")}
    assert io_tasks == {queue.TASK_INGEST: [7], queue.TASK_FINISH: [42, 3, "k"]}


def test_no_live_workers_on_an_idle_broker(settings, redis_server):
    settings = settings.model_copy(update={"redis_url": redis_server.url})
    assert queue.live_workers(settings, timeout=0.3) == []


def test_finishing_ids_and_the_brokers_identity(settings, redis_server):
    """A finishing's task id is made from render and attempt (so the janitor can look for it);
    the broker's run id changes when Redis restarts; ping and the run id raise while it is down."""
    import pytest

    settings = settings.model_copy(update={"redis_url": redis_server.url})
    assert queue.enqueue_finish(settings, 7, 2, "key.npz", patient=False) == queue.finish_task_id(7, 2) == "finish-7-2"
    assert queue.finish_task_id(7, 2) in queue.pending_task_ids(settings, queues=(queue.IO_QUEUE,))
    queue.ping(settings)
    before = queue.broker_run_id(settings)
    redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        queue.ping(settings)
    with pytest.raises(redis.ConnectionError):
        queue.broker_run_id(settings)
    redis_server.start()
    assert queue.broker_run_id(settings) not in ("", before)


def test_a_burst_of_new_pages_neither_jumps_ahead_of_finishing_nor_counts_as_backlog(settings, redis_server):
    """Another studio's burst (archives to unpack, pages to ingest) waits behind the finishing of
    pages already coloured, and the render workers' back-pressure counts only that finishing, so
    the burst can slow a running chapter but never pause its renders. The burst's batches are
    younger than the chapter's (rank 1 and more): its archives wait behind the chapter's pages."""
    from worker.render import wait_for_io

    settings = settings.model_copy(update={"redis_url": redis_server.url})
    for upload_id in range(15):
        queue.enqueue_unpack(settings, upload_id, rank=1 + upload_id)
    for page_id in range(60):
        queue.enqueue_ingest(settings, page_id)
    assert queue.queue_lengths(settings)["io"] == 75
    assert queue.finishing_backlog(settings) == 0
    started = time.monotonic()
    wait_for_io(settings, 1)
    assert time.monotonic() - started < 1.0  # 75 waiting io tasks, none of them finishing: no pause
    queue.enqueue_finish(settings, 42, 1, "k")
    order = [m["headers"]["task"] for m in _bodies(redis_server.url, "io")]
    assert order == [queue.TASK_FINISH] + [queue.TASK_INGEST] * 60 + [queue.TASK_UNPACK] * 15
    ingests = [m["body"][0][0] for m in _bodies(redis_server.url, "io")[1:61]]
    assert ingests == list(range(60))  # first in, first out within a step
    queue.enqueue_finish(settings, 43, 1, "k")
    assert queue.finishing_backlog(settings) == 2


def test_a_worker_takes_finishing_first(settings, redis_server):
    """What kombu hands a consumer of the io queue: the finishing sent last, before the ingests
    sent earlier (its Redis channel pops the priority steps in order)."""
    settings = settings.model_copy(update={"redis_url": redis_server.url})
    for page_id in range(5):
        queue.enqueue_ingest(settings, page_id)
    queue.enqueue_finish(settings, 42, 1, "k")
    with queue.client(settings).connection_for_read() as conn:
        inbox = conn.SimpleQueue(queue.IO_QUEUE)
        taken = []
        for _ in range(3):
            message = inbox.get(timeout=5)
            taken.append(message.headers["task"])
            message.ack()
        inbox.close()
    assert taken == [queue.TASK_FINISH, queue.TASK_INGEST, queue.TASK_INGEST]


def test_a_running_chapters_pages_go_before_a_burst_sent_earlier(settings, redis_server):
    """Renders are sent at their batch's rank (older batches first): the chapter's next page,
    unpacked after a burst of younger batches was queued, is the next one a render worker takes."""
    settings = settings.model_copy(update={"redis_url": redis_server.url})
    assert [queue.priority(queue.TASK_RENDER, r) for r in (0, 1, 5, 40)] == [0, 1, 5, 9]
    # The io queue, rank-major: a batch's finishing, then its ingests and archives, then the next batch's.
    assert [queue.priority(queue.TASK_FINISH, r) for r in (0, 1, 2, 40)] == [0, 2, 4, 8]
    assert [queue.priority(queue.TASK_INGEST, r) for r in (0, 1, 2, 40)] == [1, 3, 5, 9]
    assert [queue.priority(queue.TASK_UNPACK, r) for r in (0, 2, 40)] == [1, 5, 9]  # an archive: as its pages
    assert queue.priority(queue.TASK_WEBHOOK, 7) == 1
    for batch in range(1, 4):  # three younger batches, ranks 1 to 3 (the chapter has pages waiting)
        for page in range(2):
            queue.enqueue_render(settings, 100 * batch + page, rank=batch)
    queue.enqueue_render(settings, 7, rank=0)  # the chapter's next page
    with queue.client(settings).connection_for_read() as conn:
        inbox = conn.SimpleQueue(queue.RENDER_QUEUE)
        taken = []
        for _ in range(7):
            message = inbox.get(timeout=5)
            taken.append(message.payload[0][0])
            message.ack()
        inbox.close()
    assert taken == [7, 100, 101, 200, 201, 300, 301]


def test_a_chapter_sent_as_an_archive_is_unpacked_before_a_burst_sent_after_it(settings, redis_server):
    """The chapter's ZIP (rank 0: nothing older waits) is unpacked before the ingests of a burst of
    younger batches sent after it (rank 1 and more: the chapter's archive counts as work waiting)
    and before the finishing of the burst's pages, which the render workers colour meanwhile, so
    the burst never holds the chapter back from starting. That finishing still counts as backlog."""
    settings = settings.model_copy(update={"redis_url": redis_server.url})
    queue.enqueue_unpack(settings, 1, rank=0)  # the chapter, sent first
    for batch in range(1, 4):  # the burst's pages, all there at once
        for page in range(2):
            queue.enqueue_ingest(settings, 100 * batch + page, rank=batch)
            queue.enqueue_finish(settings, 100 * batch + page, 1, "k", rank=batch)
    assert queue.finishing_backlog(settings) == 6
    with queue.client(settings).connection_for_read() as conn:
        inbox = conn.SimpleQueue(queue.IO_QUEUE)
        message = inbox.get(timeout=5)
        first = (message.headers["task"], message.payload[0][0])
        message.ack()
        inbox.close()
    assert first == (queue.TASK_UNPACK, 1)


def test_every_routed_task_has_a_priority_step():
    """A task added to a queue without a priority step would fail every send (KeyError)."""
    from panelpaint.queue import PRIORITY_STEPS, ROUTES, priority

    assert all(priority(name, rank) in PRIORITY_STEPS for name in ROUTES for rank in (0, 3, 50))
