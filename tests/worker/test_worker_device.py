"""A worker says where it colours (the workers screen shows it), without touching CUDA."""
from __future__ import annotations


def test_a_worker_says_where_it_colours(monkeypatch):
    from panelpaint.settings import load_settings
    from worker import celery_app

    monkeypatch.setattr(celery_app.glob, "glob", lambda pattern: [])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert celery_app.expected_device(load_settings(device="auto")) == "cpu"  # no GPU: never "GPU"
    assert celery_app.expected_device(load_settings(device="cuda")) == "cuda"
    monkeypatch.setattr(celery_app.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    assert celery_app.expected_device(load_settings(device="auto")) == "cuda"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert celery_app.expected_device(load_settings(device="auto")) == "cpu"
    monkeypatch.setattr(celery_app, "consumed_queues", {"io"})
    assert celery_app.device(None) == {"device": None}



def test_a_render_child_on_the_cpu_keeps_torch_to_one_thread(monkeypatch):
    """The io pool runs a child per core; a second torch thread in the render child only spins
    waiting for a core (it cost a loaded 2-core machine half its pages, docs/benchmarks.md)."""
    import torch

    from panelpaint.settings import load_settings
    from worker import celery_app

    monkeypatch.setattr(celery_app.glob, "glob", lambda pattern: [])
    assert celery_app.render_threads(load_settings(device="cpu"), "cpu") == 1
    assert celery_app.render_threads(load_settings(device="cuda"), "cuda") is None  # torch's own default
    assert celery_app.render_threads(load_settings(device="cpu", render_threads=3), "cpu") == 3
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        celery_app.set_render_threads(load_settings(device="auto"))  # no GPU here: the CPU
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_render_worker_on_the_cpu_colours_only_a_few_pages_ahead_of_finishing():
    """Beside a GPU the render worker may colour 32 pages ahead of the io pool (the GPU works while
    the CPUs finish); on the CPU it shares the cores with the finishing, so it keeps about one
    page per core ahead: colouring further ahead took cores from an older batch's finishing."""
    import os
    from types import SimpleNamespace

    from panelpaint.settings import load_settings
    from worker.render import GPU_IO_BACKLOG, io_backlog

    cpu, gpu = SimpleNamespace(device=SimpleNamespace(type="cpu")), SimpleNamespace(device=SimpleNamespace(type="cuda"))
    assert io_backlog(load_settings(), gpu) == GPU_IO_BACKLOG == 32
    assert io_backlog(load_settings(), cpu) == max(2, os.cpu_count() or 1)
    assert io_backlog(load_settings(worker_concurrency=6), cpu) == 6
    assert io_backlog(load_settings(io_backlog=9), cpu) == io_backlog(load_settings(io_backlog=9), gpu) == 9
