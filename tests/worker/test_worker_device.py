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

