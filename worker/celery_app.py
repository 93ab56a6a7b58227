"""The workers' Celery app, configured from panelpaint's settings and the shared queue
configuration: prefork pools, one child per GPU on `render` (the model loaded after the fork),
one per core on `io` (why: docs/architecture.md, "Queues and pools")."""
from __future__ import annotations

import glob
import logging
import os

from celery import Celery, bootsteps, signals
from celery.worker.control import inspect_command

from panelpaint.queue import RENDER_QUEUE, celery_config
from panelpaint.settings import get_settings

from worker.logs import quiet_broker_hiccups
from worker.lost_broker import survive_a_lost_broker

log = logging.getLogger(__name__)

# The seconds a render child may take between fork and ready (model load + warm-up).
PROC_ALIVE_TIMEOUT = 300.0


def make_app(settings=None) -> Celery:
    settings = settings or get_settings()
    app = Celery("panelpaint", include=["worker.tasks"])
    app.conf.update(celery_config(settings))
    app.conf.update(
        worker_proc_alive_timeout=PROC_ALIVE_TIMEOUT,
        # A warm shutdown lets a running page reach its end; what is only reserved goes back.
        worker_soft_shutdown_timeout=0.0,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # Long pages on a lost connection are not cancelled: the attempt fence handles a rerun.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


app = make_app()
quiet_broker_hiccups()
survive_a_lost_broker()

# Queues this worker consumes, recorded in the parent before it forks its children.
consumed_queues: set[str] = set()


@signals.worker_init.connect
def _record_queues(sender=None, **_kwargs) -> None:
    consumed_queues.clear()
    consumed_queues.update(sender.app.amqp.queues.consume_from or ())


def expected_device(settings) -> str:  # noqa: ANN001 - Settings
    """Where this worker's render child colours, said by the parent without touching CUDA (it forks
    that child): the configured device, or, for "auto", "cuda" when an NVIDIA GPU is visible to the
    process and "cpu" when none is, as the child's model load decides."""
    if settings.device != "auto":
        return settings.device
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return "cpu"
    return "cuda" if glob.glob("/dev/nvidia[0-9]*") else "cpu"


@inspect_command()
def device(state, **_kwargs) -> dict:  # noqa: ANN001 - celery's worker state
    """`celery inspect device` (and the dashboard's workers screen): where this worker colours;
    None for a worker that does not colour (the io queue only)."""
    return {"device": expected_device(get_settings()) if RENDER_QUEUE in consumed_queues else None}


def render_threads(settings, device: str) -> int | None:  # noqa: ANN001 - Settings
    """The torch CPU threads of a render child colouring on `device` (`Settings.render_threads`);
    None leaves torch's default."""
    if settings.render_threads:
        return settings.render_threads
    return 1 if device == "cpu" else None


def set_render_threads(settings) -> None:  # noqa: ANN001 - Settings
    threads = render_threads(settings, expected_device(settings))
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@signals.worker_process_init.connect
def _init_child(**_kwargs) -> None:
    """Load and warm the colouring model once per render child, after the fork. An io worker runs
    one child per core, so each of its children keeps OpenCV to one thread (no oversubscription)."""
    if RENDER_QUEUE not in consumed_queues:
        import cv2

        cv2.setNumThreads(1)
        return
    from worker import resources

    set_render_threads(get_settings())
    try:
        resources.current().runtime.load()
    except Exception:  # noqa: BLE001 - a missing model is reported per page, the worker keeps serving
        log.exception("model could not be loaded at start-up; renders will fail until it can")


class JanitorStep(bootsteps.StartStopStep):
    """Render workers look for lost renders and uploads on their event loop's timer (no thread:
    the parent forks); see `worker.sweeps`. A consumer step, started again on every reconnection:
    Celery clears the event loop's timers when the broker connection is lost (celery.worker.loops,
    5.6 and later), and a janitor registered once would stop at the first broker outage, the very
    time it is needed for."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs) -> None:  # noqa: ANN001 - the Consumer
        super().__init__(c, **kwargs)
        self.janitor = None  # one per worker: it remembers the broker and database between ticks
        self.tref = None

    def start(self, c) -> None:  # noqa: ANN001
        if RENDER_QUEUE not in consumed_queues:
            return
        from worker.sweeps import Janitor, tick_seconds

        settings = get_settings()
        if self.janitor is None:
            self.janitor = Janitor(settings)
        if self.tref is not None:
            self.tref.cancel()
        self.tref = c.timer.call_repeatedly(tick_seconds(settings), self.tick)

    def tick(self) -> None:
        try:
            self.janitor.tick()
        except Exception:  # noqa: BLE001 - a bug in a sweep must not stop the worker; the next tick tries again
            log.exception("the janitor's sweep failed")

    def stop(self, c) -> None:  # noqa: ANN001
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


app.steps["consumer"].add(JanitorStep)
