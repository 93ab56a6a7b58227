"""Webhooks (admins): the studio's endpoints with their signing secrets, and the delivery log."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from panelpaint.store.errors import InvalidInput
from panelpaint.store.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER

from ..services import rollback, webhooks
from .auth import require

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
HEADERS = {"signature": SIGNATURE_HEADER, "event": EVENT_HEADER, "delivery": DELIVERY_HEADER}


def page(error: str | None = None, form=None, status: int = 200):  # noqa: ANN001, ANN201 - the form sent
    return render_template("webhooks.html", endpoints=webhooks.endpoints(), deliveries=webhooks.deliveries(),
                           headers=HEADERS, error=error, form=form or {}), status


@bp.get("")
@require("admin")
def index():
    return page()


@bp.post("")
@require("admin")
def add():
    try:
        hook = webhooks.add(request.form.get("url", ""))
    except InvalidInput as exc:
        rollback()
        return page(str(exc), request.form, 400)
    flash(f"{hook.url} is told when a batch ends; check each body's signature with its secret.", "success")
    return redirect(url_for("webhooks.index"))


@bp.post("/<id:webhook_id>/delete")
@require("admin")
def delete(webhook_id: int):
    webhooks.remove(webhook_id)  # another studio's: NotFound, a 404
    flash("Webhook removed.", "success")
    return redirect(url_for("webhooks.index"))
