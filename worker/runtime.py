"""The model of a render worker: loaded once per process, warmed up, and surviving CUDA out-of-memory.

`ModelRuntime.colorizer` is a `ResilientColorizer` (the `WorkerColorizer` contract): its
`colorize_batch` retries a batch that ran out of GPU memory in halves, then one panel at a time,
then on the CPU, and records the step it needed in `degraded`. One runtime per worker child
lives in `worker.resources`.
"""
from __future__ import annotations

import gc
import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from panelpaint.pages import PanelColorizer
from panelpaint.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _out_of_memory_types() -> tuple[type[BaseException], ...]:
    import torch

    return (torch.cuda.OutOfMemoryError,)


def _free_gpu_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@runtime_checkable
class WorkerColorizer(PanelColorizer, Protocol):
    """What the render step needs of its colorizer beyond the page pipeline's `PanelColorizer`."""

    @property
    def degraded(self) -> str | None:
        """The worst fallback used since `reset()` (e.g. "cuda oom: cpu fallback"), or None."""
        ...

    @property
    def device(self) -> Any:
        """The torch device the model runs on (`.type == "cuda"` colours several pages per pass), or None."""
        ...

    def reset(self) -> None:
        """Forget `degraded` before the next pages."""
        ...


class ResilientColorizer:
    """Wraps a Colorizer; `colorize_batch` never lets a CUDA OOM escape while a fallback remains."""

    def __init__(self, model: PanelColorizer, cpu_loader):
        self.model = model
        self._cpu_loader = cpu_loader
        self._cpu_model = None
        self.degraded: str | None = None  # worst fallback used since `reset()`

    @property
    def model_version(self) -> str:
        return self.model.model_version

    @property
    def device(self) -> Any:
        return getattr(self.model, "device", None)

    def reset(self) -> None:
        self.degraded = None

    def _note(self, step: str) -> None:
        order = ["cuda oom: smaller batches", "cuda oom: one panel at a time", "cuda oom: cpu fallback"]
        if self.degraded is None or order.index(step) > order.index(self.degraded):
            self.degraded = step
        log.warning("%s", step)

    def _try(self, model: Any, args: tuple, kwargs: dict) -> list | None:
        """The model's result, or None after an OOM (with the exception and its tensors released)."""
        try:
            return model.colorize_batch(*args, **kwargs)
        except _out_of_memory_types():
            pass  # leave the except block first: the traceback holds the tensors (PyTorch FAQ)
        _free_gpu_memory()
        return None

    def _cpu(self) -> Any:
        if self._cpu_model is None:
            self._cpu_model = self._cpu_loader()
        return self._cpu_model

    def colorize_batch(self, sketches, styles, hints=None, **kwargs) -> list:
        n = len(sketches)

        def part(lo: int, hi: int) -> tuple:
            return (sketches[lo:hi], styles[lo:hi], None if hints is None else hints[lo:hi])

        result = self._try(self.model, part(0, n), kwargs)
        if result is not None:
            return list(result)
        out: list = []
        chunk = max(1, n // 2)
        step = "cuda oom: smaller batches" if chunk > 1 else "cuda oom: one panel at a time"
        self._note(step)
        for lo in range(0, n, chunk):
            got = self._try(self.model, part(lo, min(n, lo + chunk)), kwargs)
            if got is None and chunk > 1:
                self._note("cuda oom: one panel at a time")
                got = []
                for i in range(lo, min(n, lo + chunk)):
                    one = self._try(self.model, part(i, i + 1), kwargs)
                    if one is None:
                        self._note("cuda oom: cpu fallback")
                        one = self._cpu().colorize_batch(*part(i, i + 1), **kwargs)
                    got.extend(one)
            elif got is None:
                self._note("cuda oom: cpu fallback")
                got = self._cpu().colorize_batch(*part(lo, lo + 1), **kwargs)
            out.extend(got)
        return out


def model_version(model: Any, path: Path | None) -> str:
    """The version recorded on every render: the weights' own, plus a short hash of the file."""
    version = getattr(model, "model_version", None) or "unversioned"
    path = path or getattr(model, "weights_path", None)
    if path is None or not Path(path).is_file():
        return version[:64]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{version[:48]}+{h.hexdigest()[:12]}"


class ModelRuntime:
    """One colouring model per process, loaded on first use (or at start-up) and warmed up."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self._lock = threading.Lock()
        self._colorizer: ResilientColorizer | None = None
        self.model_version: str | None = None
        self.load_seconds: float | None = None

    def _load(self, device: str):
        from models.colorizer import Colorizer

        return Colorizer.from_file(self.settings.weights, device=device, compile=self.settings.compile,
                                   max_batch=self.settings.max_panel_batch)

    def load(self) -> ResilientColorizer:
        import time

        with self._lock:
            if self._colorizer is None:
                t0 = time.perf_counter()
                model = self._load(self.settings.device)
                self._colorizer = ResilientColorizer(model, lambda: self._load("cpu"))
                self.model_version = model_version(model, self.settings.weights)
                self._warm_up(model)
                self.load_seconds = time.perf_counter() - t0
                log.info("model %s loaded and warmed up in %.1f s", self.model_version, self.load_seconds)
            return self._colorizer

    def _warm_up(self, model: Any) -> None:
        # One small forward pass: allocator, cuDNN autotuning and lazy modules happen here, not on page 1.
        from PIL import Image

        size = min(self.settings.effective_work_size(), 128)
        model.colorize_batch([Image.new("L", (size, size), 255)], [Image.new("RGB", (64, 64), (200, 160, 120))],
                             size=size, seed=0)

    @property
    def colorizer(self) -> ResilientColorizer:
        return self.load()

