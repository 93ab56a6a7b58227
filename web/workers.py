"""The workers screen: live Celery workers and queue lengths (panelpaint.queue), with a link to Flower."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from panelpaint import queue

from .services import services

bp = Blueprint("workers", __name__, url_prefix="/workers")


def snapshot() -> dict:
    """Workers and queue lengths now; an unreachable broker is reported, not raised."""
    settings = services().settings
    data = {"workers": [], "queues": {}, "error": None, "flower_url": settings.flower_url}
    try:
        data["queues"] = queue.queue_lengths(settings)
        data["workers"] = queue.live_workers(settings, timeout=1.0)
    except Exception as exc:  # noqa: BLE001 - redis/kombu raise many types; the page must still render
        data["error"] = f"The queue broker cannot be reached ({type(exc).__name__}: {exc})."
    return data


@bp.get("")
def index():
    return render_template("workers.html", **snapshot())


@bp.get("/status.json")
def status():
    return jsonify(snapshot())
