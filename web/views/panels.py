"""The review screen's panel editor: save a page's edited boxes (JSON from `static/panel_editor.js`),
confirming them too for a page held for its panel check."""
from __future__ import annotations

from flask import Blueprint, flash, jsonify, request, url_for

from panelpaint.store.errors import IllegalTransition, InvalidInput

from ..errors import USER_ERRORS
from ..services import batches, panels, rollback
from ..services.fields import parse_flag
from .auth import require

bp = Blueprint("panels", __name__, url_prefix="/review")


@bp.post("/<id:page_id>/panels")
@require("rerender")
def save(page_id: int):
    """Save the editor's boxes; a refused edit answers its message (400 or 409) for the editor to show."""
    page = batches.get_page(page_id)
    data = request.get_json(silent=True)
    try:
        if not isinstance(data, dict):
            raise InvalidInput("The editor sent no boxes; reload the page and try again.")
        edit = panels.edit(page, data.get("panels"), parse_flag(data.get("confirm"), "confirm"))
    except USER_ERRORS as exc:
        rollback()
        return jsonify(error="refused", message=str(exc)), 409 if isinstance(exc, IllegalTransition) else 400
    flash(panels.summary(edit), "success")
    return jsonify(edit=edit.to_dict(), url=url_for("review.page", page_id=page.id))

