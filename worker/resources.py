"""What one worker process holds: the job store, the file storage and the model runtime.

They are made on first use in the process that uses them (a pool child never inherits its
parent's connections or CUDA state). `current()` gives them to the tasks; `reset()` drops them,
or puts given ones in their place (tests that run tasks in their own process).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from functools import cached_property

from sqlalchemy.orm import Session

from panelpaint.settings import Settings, get_settings
from panelpaint.store.db import Store
from panelpaint.store.storage import Storage, storage_from_settings
from worker.runtime import ModelRuntime

# Celery's pool raises the soft time limit from a handler of this signal (billiard).
SOFT_LIMIT_SIGNAL = getattr(signal, "SIGUSR1", None)


@contextlib.contextmanager
def soft_limit_deferred() -> Iterator[None]:
    """Hold the soft time limit back for the block: its handler is swapped for one that only notes
    the signal, and the real one runs (raising) as the block ends. (Blocking the signal would not
    do: another thread, torch's say, would take it, and Python runs handlers in the main thread.)"""
    handler = signal.getsignal(SOFT_LIMIT_SIGNAL) if SOFT_LIMIT_SIGNAL is not None else None
    if not callable(handler) or threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list = []
    signal.signal(SOFT_LIMIT_SIGNAL, lambda signum, frame: noted.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(SOFT_LIMIT_SIGNAL, handler)
        if noted:
            handler(*noted[0])


class ShieldedStore(Store):
    """The job store as a task uses it: the soft time limit never lands inside a transaction. Raised
    from a signal handler in the middle of a database command, it would leave the connection
    mid-command for its next user; it is raised instead when the transaction has ended."""

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with soft_limit_deferred(), super().session() as s:
            yield s


class Resources:
    """The store, storage and model runtime for `settings`, each made when first asked for."""

    def __init__(self, settings: Settings | None = None, *, runtime: ModelRuntime | None = None):
        self.settings = settings or get_settings()
        if runtime is not None:
            self.runtime = runtime

    @cached_property
    def store(self) -> Store:
        return ShieldedStore(self.settings.database_url)

    @cached_property
    def storage(self) -> Storage:
        return storage_from_settings(self.settings)

    @cached_property
    def runtime(self) -> ModelRuntime:
        """The colouring model, loaded by `runtime.load()` (a render child does so at start-up)."""
        return ModelRuntime(self.settings)

    def close(self) -> None:
        """Close the store's connections (the model and storage need nothing)."""
        if "store" in self.__dict__:
            self.store.dispose()


_held: tuple[int, Resources] | None = None  # (the pid that made them, them)


def current() -> Resources:
    """This process's resources, made from the settings on first use after start-up or a fork."""
    global _held
    if _held is None or _held[0] != os.getpid():
        _held = (os.getpid(), Resources())
    return _held[1]


def reset(resources: Resources | None = None) -> None:
    """Drop this process's resources (closing their connections), so the next task makes new ones
    from the settings as they are then; or, with `resources`, use those from now on."""
    global _held
    if _held is not None and _held[0] == os.getpid():
        _held[1].close()
    _held = (os.getpid(), resources) if resources is not None else None
