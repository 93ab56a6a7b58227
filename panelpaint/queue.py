"""The torch-free queue client: task names, the shared Celery configuration, enqueue, revoke and
inspection. The dashboard and the command line send work through it by task name, only after
the commit that made its row; the workers' app is built from the same configuration
(docs/architecture.md, "Queues and pools")."""
from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from panelpaint.settings import Settings

RENDER_QUEUE = "render"  # GPU: one worker process per GPU, the model loaded once per process
IO_QUEUE = "io"  # CPU: unpacking archives, ingest (panels), finishing at native resolution, encoding, exports
QUEUES = (RENDER_QUEUE, IO_QUEUE)

# Colour one page (args: render_id). Claims the render (and, on a GPU, the queued pages after it
# with the same style), colours their panels in one forward pass, stores each page's panel
# colours at work size and hands each page to the io queue.
TASK_RENDER = "panelpaint.render_page"
# Finish a coloured page: upsample its panels to native resolution, composite, encode the
# deliverables and complete the render (args: render_id, attempt, hand-off storage key).
TASK_FINISH = "panelpaint.finish_page"
# Detect a new page's panels and cut the network's inputs for them (args: page_id).
TASK_INGEST = "panelpaint.ingest_page"
# Unpack an upload's archives (and the images sent with them) into pages, queueing each (args: upload_id).
TASK_UNPACK = "panelpaint.unpack_upload"

# POST one attempt of a webhook delivery and record the answer (args: delivery_id, attempt).
TASK_WEBHOOK = "panelpaint.deliver_webhook"

ROUTES: dict[str, str] = {TASK_RENDER: RENDER_QUEUE, TASK_FINISH: IO_QUEUE, TASK_INGEST: IO_QUEUE,
                          TASK_UNPACK: IO_QUEUE, TASK_WEBHOOK: IO_QUEUE}

# Fairness. Over Redis, kombu keeps one list per priority step of a queue and a worker pops them
# in order, step 0 first (`PRIORITY_STEPS`: ten steps, so that batches can be told apart).
# Batches are served oldest first: every task of a batch is sent at its `rank`, the number of
# older batches that still have work waiting, pages or archives (`store.batches.queue_rank`).
# - The render queue has a step per rank (0-9).
# - The io queue has two steps per rank (ranks 0-4): first the batch's finishing of coloured pages
#   (work under way), then its ingests and the unpacking of its archives. A chapter sent as one ZIP
#   is unpacked before the finishing of a burst of batches sent after it, which the render workers
#   colour while the chapter has no page yet: the burst slows the chapter by the CPU it takes,
#   never by queueing it behind. Webhook POSTs go with the oldest batch's ingests (they are short).
# A message sent again (a retry, a lost message the janitor re-sends) goes at rank 0.
PRIORITY_STEPS = list(range(10))
IO_RANKS = len(PRIORITY_STEPS) // 2  # batch ranks the io queue tells apart (the last one takes the rest)
IO_STAGE: dict[str, int] = {TASK_FINISH: 0, TASK_INGEST: 1, TASK_UNPACK: 1}


def priority(task_name: str, rank: int = 0) -> int:
    """The priority step a task is sent at for its batch's `rank`."""
    rank = max(0, rank)
    if task_name == TASK_RENDER:
        return min(rank, PRIORITY_STEPS[-1])
    if task_name == TASK_WEBHOOK:
        return IO_STAGE[TASK_INGEST]
    return 2 * min(rank, IO_RANKS - 1) + IO_STAGE[task_name]


def finishing_steps() -> list[int]:
    """The io queue's steps that hold finishing only (what the render workers' back-pressure counts)."""
    return [2 * rank + IO_STAGE[TASK_FINISH] for rank in range(IO_RANKS)]


def transport_options(settings: "Settings") -> dict[str, Any]:
    """Redis transport options; used for the broker and the result backend alike."""
    return {
        # Unacked messages are restored after this; it must exceed the longest task on every worker.
        "visibility_timeout": settings.visibility_timeout,
        # kombu sweeps for expired unacked messages every interval x throttle seconds (100 s by
        # default); a sweep every tenth of the timeout bounds the takeover delay to ~1.1 timeouts.
        "unacked_restore_interval": max(1, min(60, settings.visibility_timeout // 10)),
        "unacked_restore_throttle": 1,
        # A worker killed mid-sweep leaves the sweep mutex behind until it expires (300 s by default).
        "unacked_mutex_expire": max(10, min(300, settings.visibility_timeout // 2)),
        "priority_steps": PRIORITY_STEPS,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }


def celery_config(settings: "Settings") -> dict[str, Any]:
    """The Celery configuration shared by the queue client and the workers."""
    options = transport_options(settings)
    url = settings.effective_redis_url()
    return {
        "broker_url": url,
        "broker_transport_options": options,
        "result_backend_transport_options": options,
        "visibility_timeout": settings.visibility_timeout,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # keep trying through a Redis restart
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,  # the job store is the record
        "task_routes": {name: {"queue": queue} for name, queue in ROUTES.items()},
        "task_default_queue": IO_QUEUE,
        "task_create_missing_queues": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A page killed by the hard time limit goes back to the queue like one whose worker died;
        # the job store's attempt cap decides when to give up on it.
        "task_acks_on_timeout": False,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        "timezone": "UTC",
        "enable_utc": True,
    }


# Celery's package swaps itself for a lazy module while it is first imported, and a second thread
# importing it meanwhile gets "cannot import name 'Celery'": a dashboard process's first requests,
# sending at once, lost their messages that way (pages queued until the janitor's full sweep).
_CLIENT_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _client(config_json: str) -> "Celery":
    with _CLIENT_LOCK:
        from celery import Celery

        app = Celery("panelpaint-client", set_as_current=False)
        app.conf.update(json.loads(config_json))
        app.amqp  # noqa: B018 - built once here, not by the first sends racing each other
        return app


def client(settings: "Settings") -> "Celery":
    """A lightweight Celery app that only sends and inspects (no task code); cached per configuration."""
    return _client(json.dumps(celery_config(settings), sort_keys=True))


# Publishing from a worker waits out a Redis restart (about 80 s) rather than losing the hand-off;
# a web request uses kombu's short default and reports the error to the user.
PATIENT_RETRY = {"max_retries": 30, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 3.0}


def send(settings: "Settings", task_name: str, *args: Any, task_id: str | None = None,
         countdown: float | None = None, patient: bool = False, rank: int = 0) -> str:
    """Send a task by name to its queue (at its priority for `rank`) and return the Celery task id."""
    queue = ROUTES[task_name]
    options: dict[str, Any] = {"retry": True, "priority": priority(task_name, rank)}
    if patient:
        options["retry_policy"] = PATIENT_RETRY
    result = client(settings).send_task(task_name, args=list(args), queue=queue, task_id=task_id,
                                        countdown=countdown, **options)
    return result.id


def enqueue_render(settings: "Settings", render_id: int, task_id: str | None = None, *,
                   countdown: float | None = None, rank: int = 0) -> str:
    """Queue the colouring of a render row, after the commit that made it queued.

    Pass the render's pre-made `task_id` (`panelpaint.store.renders.queue_render` sets one) so that
    cancelling can revoke it, and a new page's batch `rank` (`PRIORITY_STEPS`); returns the task id.
    """
    return send(settings, TASK_RENDER, int(render_id), task_id=task_id, countdown=countdown, rank=rank)


def enqueue_ingest(settings: "Settings", page_id: int, rank: int = 0) -> str:
    """Queue panel detection for a page row (already committed with its source stored)."""
    return send(settings, TASK_INGEST, int(page_id), rank=rank)


def enqueue_unpack(settings: "Settings", upload_id: int, task_id: str | None = None, *,
                   countdown: float | None = None, rank: int = 0) -> str:
    """Queue the unpacking of an upload row (committed, its files stored) under its pre-made task
    id, at its batch's `rank`."""
    return send(settings, TASK_UNPACK, int(upload_id), task_id=task_id, countdown=countdown, rank=rank)


def enqueue_webhook(settings: "Settings", delivery_id: int, attempt: int) -> str:
    """Queue one attempt of a webhook delivery, claimed (`store.webhooks.claim_due`) and committed."""
    return send(settings, TASK_WEBHOOK, int(delivery_id), int(attempt))


def finish_task_id(render_id: int, attempt: int) -> str:
    """The task id of an attempt's finishing: made from the render and attempt, so the janitor can
    tell whether the broker still holds it (`pending_task_ids`) without recording it anywhere."""
    return f"finish-{int(render_id)}-{int(attempt)}"


def enqueue_finish(settings: "Settings", render_id: int, attempt: int, handoff_key: str, *,
                   patient: bool = True, rank: int = 0) -> str:
    """Queue the finishing of a coloured page at its batch's `rank` (the render task does this,
    waiting out a broker restart; the janitor sends it again, impatiently, when its message is gone)."""
    return send(settings, TASK_FINISH, int(render_id), int(attempt), str(handoff_key),
                task_id=finish_task_id(render_id, attempt), patient=patient, rank=rank)


def revoke(settings: "Settings", task_ids: Iterable[str], terminate: bool = False) -> None:
    """Revoke queued tasks so workers drop them on receipt.

    Running renders are not terminated by default: they stop themselves at the next panel
    boundary once the job store marks them cancelled, which leaves no half-written output.
    A revoke is only an optimisation: a cancelled render's task is refused by its claim anyway.
    """
    ids = [t for t in task_ids if t]
    if ids:
        app = client(settings)
        # A fresh connection per broadcast: a pooled one may be stale after a Redis restart.
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)
            app.control.revoke(ids, terminate=terminate, connection=conn)


def _redis(settings: "Settings", timeout: float):  # noqa: ANN202 - a redis.Redis
    import redis

    return redis.Redis.from_url(settings.effective_redis_url(), socket_timeout=timeout,
                                socket_connect_timeout=timeout)


def broker_run_id(settings: "Settings", timeout: float = 2.0) -> str:
    """The broker's run id, which changes whenever Redis restarts (what it held since its last
    save may be gone), or "" where INFO is not allowed (some hosted Redis); raises redis
    connection errors when it does not answer within `timeout` seconds."""
    import redis

    conn = _redis(settings, timeout)
    try:
        return str(conn.info("server").get("run_id", ""))
    except redis.ResponseError:
        conn.ping()  # it answers, it only refuses INFO
        return ""
    finally:
        conn.close()


def ping(settings: "Settings", timeout: float = 1.0) -> None:
    """Raise (redis errors) unless the broker answers a PING within `timeout` seconds."""
    conn = _redis(settings, timeout)
    try:
        conn.ping()
    finally:
        conn.close()


def priority_keys(queue: str) -> list[str]:
    """The Redis lists kombu keeps for a queue, highest priority first: one per priority step,
    step 0 being the bare queue name."""
    from kombu.transport.redis import Channel

    return [queue] + [f"{queue}{Channel.sep}{p}" for p in PRIORITY_STEPS if p]


def queue_lengths(settings: "Settings") -> dict[str, int]:
    """Messages waiting in each queue (not counting those a worker has reserved)."""
    conn = _redis(settings, 2)
    try:
        lengths = {}
        for queue in QUEUES:
            pipe = conn.pipeline()
            for key in priority_keys(queue):
                pipe.llen(key)
            lengths[queue] = int(sum(pipe.execute()))
        return lengths
    finally:
        conn.close()


def finishing_backlog(settings: "Settings") -> int:
    """Coloured pages waiting to be finished: the io queue's steps that hold only finishing
    (`finishing_steps`); raises redis errors when the broker does not answer."""
    conn = _redis(settings, 2)
    keys = priority_keys(IO_QUEUE)
    try:
        with conn.pipeline(transaction=False) as pipe:
            for step in finishing_steps():
                pipe.llen(keys[step])
            return int(sum(pipe.execute()))
    finally:
        conn.close()


def _task_id(raw: bytes | str) -> str | None:
    """The task id in a kombu Redis message (a queue entry, or an unacked [payload, exchange, key])."""
    try:
        data = json.loads(raw)
        payload = data[0] if isinstance(data, list) else data
        return payload["headers"]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def pending_task_ids(settings: "Settings", queues: Iterable[str] = (RENDER_QUEUE,)) -> set[str]:
    """Ids of the tasks the broker holds: waiting in `queues`, or reserved by a worker and not yet
    acknowledged (running, prefetched, or waiting out a retry countdown).

    The queues are read before the unacked messages, so a message moving from one to the other
    meanwhile is still seen. Raises redis errors when the broker is unreachable.
    """
    import redis
    from kombu.transport.redis import Channel

    conn = redis.Redis.from_url(settings.effective_redis_url(), socket_timeout=5, socket_connect_timeout=2)
    try:
        pipe = conn.pipeline()
        for queue in queues:
            for key in priority_keys(queue):
                pipe.lrange(key, 0, -1)
        waiting = [raw for entries in pipe.execute() for raw in entries]
        reserved = conn.hvals(Channel.unacked_key)
    finally:
        conn.close()
    return {i for i in map(_task_id, [*waiting, *reserved]) if i}


def live_workers(settings: "Settings", timeout: float = 1.0) -> list[dict[str, Any]]:
    """Workers answering a ping within `timeout`: name, queues consumed, running task count, pool
    size, pid and the device a render worker colours on.

    An unreachable broker gives an empty list (the dashboard shows "no workers"), never an error.
    """
    from kombu.exceptions import OperationalError

    app = client(settings)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)

            def inspect(names: list[str] | None = None):
                if names is None:
                    return app.control.inspect(timeout=timeout, connection=conn)
                # Ask only the workers that answered, and stop waiting once all of them replied.
                return app.control.inspect(destination=names, timeout=timeout, limit=len(names), connection=conn)

            pings = inspect().ping() or {}
            if not pings:
                return []
            names = sorted(pings)
            queues = inspect(names).active_queues() or {}
            active = inspect(names).active() or {}
            stats = inspect(names).stats() or {}
            # The workers' own inspect command (`worker.celery_app.device`): where each colours.
            replies = app.control.broadcast("device", reply=True, destination=names, timeout=timeout,
                                            limit=len(names), connection=conn) or []
            devices = {name: reply for r in replies for name, reply in r.items()}
    except (OperationalError, ConnectionError, OSError):
        return []
    workers = []
    for name in names:
        pool = (stats.get(name) or {}).get("pool") or {}
        workers.append({
            "name": name,
            "queues": sorted(q["name"] for q in queues.get(name, [])),
            "active": len(active.get(name, [])),
            "concurrency": pool.get("max-concurrency"),
            "pid": (stats.get(name) or {}).get("pid"),
            "device": (devices.get(name) or {}).get("device"),  # None: an io worker, or an older one
        })
    return workers


def __getattr__(name: str) -> Any:
    # `celery -A panelpaint.queue flower|inspect|purge` gets a client app without importing
    # the workers (and torch); made on first access so importing this module stays cheap.
    if name == "app":
        from panelpaint.settings import get_settings

        return client(get_settings())
    raise AttributeError(name)
