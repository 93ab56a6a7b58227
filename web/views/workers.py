"""The workers screen: queue lengths, then the live Celery workers (where each colours), with a
link to Flower. The page is drawn without waiting for the workers' replies; its script asks for them."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from ..services import queue

bp = Blueprint("workers", __name__, url_prefix="/workers")


@bp.get("")
def index():
    return render_template("workers.html", **queue.snapshot(with_workers=False))


@bp.get("/status.json")
def status():
    return jsonify(queue.snapshot())
