"""What one worker process holds: the job store, the file storage and the model runtime.

They are made on first use in the process that uses them (a pool child never inherits its
parent's connections or CUDA state). `current()` gives them to the tasks; `reset()` drops them,
or puts given ones in their place (tests that run tasks in their own process).
"""
from __future__ import annotations

import os
from functools import cached_property

from panelpaint.settings import Settings, get_settings
from panelpaint.store.db import Store
from panelpaint.store.storage import Storage, storage_from_settings
from worker.runtime import ModelRuntime


class Resources:
    """The store, storage and model runtime for `settings`, each made when first asked for."""

    def __init__(self, settings: Settings | None = None, *, runtime: ModelRuntime | None = None):
        self.settings = settings or get_settings()
        if runtime is not None:
            self.runtime = runtime

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.database_url)

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
