"""CUDA out-of-memory: the page is retried in smaller batches, then on the CPU, recorded, and the worker keeps serving."""
from __future__ import annotations


import pytest
import torch
from PIL import Image

from harness import Stack
from tests.testkit import random_weights
from models.colorizer import Colorizer
from panelpaint.settings import get_settings
from panelpaint.store.schema import RunStatus
from worker import resources
from worker.runtime import ModelRuntime, ResilientColorizer


class FlakyGPU:
    """A colorizer that runs out of GPU memory for batches larger than `fits`, `failures` times at most."""

    def __init__(self, model: Colorizer, fits: int = 0, failures: int = 10**6):
        self.model, self.fits, self.failures, self.calls = model, fits, failures, []
        self.model_version = model.model_version

    def colorize_batch(self, sketches, styles, hints=None, **kwargs):
        self.calls.append(len(sketches))
        if len(sketches) > self.fits and self.failures > 0:
            self.failures -= 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model.colorize_batch(sketches, styles, hints, **kwargs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Colorizer:
    path = random_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")
    return Colorizer.from_file(path, device="cpu")


def _panels(n: int):
    sketches = [Image.new("L", (48 + 8 * i, 64), 255) for i in range(n)]
    return sketches, [Image.new("RGB", (32, 32), (200, 120, 60))] * n


def test_one_oom_retries_in_smaller_batches(tiny):
    sketches, styles = _panels(4)
    expected = tiny.colorize_batch(sketches, styles, size=64, seed=1)
    flaky = FlakyGPU(tiny, fits=2, failures=1)
    wrapped = ResilientColorizer(flaky, cpu_loader=lambda: pytest.fail("the CPU was not needed"))
    out = wrapped.colorize_batch(sketches, styles, size=64, seed=1)
    assert flaky.calls == [4, 2, 2]
    assert wrapped.degraded == "cuda oom: smaller batches"
    assert [o.size for o in out] == [e.size for e in expected]


def test_persistent_oom_falls_back_to_the_cpu_per_panel(tiny):
    sketches, styles = _panels(3)
    flaky = FlakyGPU(tiny, fits=0)
    cpu_loads = []
    wrapped = ResilientColorizer(flaky, cpu_loader=lambda: cpu_loads.append(1) or tiny)
    out = wrapped.colorize_batch(sketches, styles, size=64, seed=1)
    assert len(out) == 3 and all(o.mode == "RGB" for o in out)
    assert wrapped.degraded == "cuda oom: cpu fallback"
    assert cpu_loads == [1]  # the CPU copy of the model is loaded once and kept
    wrapped.reset()
    assert wrapped.degraded is None


def test_render_task_records_the_degradation_and_serves_the_next_page(tmp_path, monkeypatch):
    stack = Stack(tmp_path, random_weights(tmp_path / "tiny.safetensors"))
    try:
        stack.bind_settings(monkeypatch)
        rt = ModelRuntime(get_settings())
        rt.load()
        flaky = FlakyGPU(rt.colorizer.model, fits=1, failures=1)  # one OOM, then everything fits
        rt.colorizer.model = flaky
        resources.reset(resources.Resources(runtime=rt))  # the tasks of this process colour with it

        _, (first, second) = stack.add_batch(["oom.png", "next.png"], enqueue=False)
        oom, nxt = stack.colour_here(first), stack.colour_here(second)
        assert oom.status == nxt.status == RunStatus.succeeded
        assert oom.degraded == "cuda oom: smaller batches"
        assert nxt.degraded is None  # the same runtime keeps serving at full speed
        assert flaky.calls == [4, 2, 2, 4]  # OOM, two halves; then the next page in one batch
    finally:
        stack.close()
