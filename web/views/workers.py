"""The workers screen: live Celery workers and queue lengths, with a link to Flower."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from ..services import queue

bp = Blueprint("workers", __name__, url_prefix="/workers")


@bp.get("")
def index():
    return render_template("workers.html", **queue.snapshot())


@bp.get("/status.json")
def status():
    return jsonify(queue.snapshot())
