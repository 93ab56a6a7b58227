"""The OpenAPI 3 document of the REST API (`web/views/api.py`), served at /api/openapi.json.

Its enums and ranges come from their one definition (`panelpaint.limits`, `panelpaint.formats`,
the schema's and the services' enums); tests/web checks that every API route is described here
and every described path exists, so the two cannot drift apart.
"""
from __future__ import annotations

from typing import Any

from panelpaint import formats
from panelpaint.flats import Background
from panelpaint.limits import (
    BATCHES_LISTED_DEFAULT, BATCHES_LISTED_MAX, HINTS_MAX, ID_MAX, NAME_MAX, OFFSET_MAX, PALETTE_COLOURS, PANEL_SIDE_MIN,
    PANELS_MAX, SEED_MAX, SWATCHES_MAX, TAG_MAX, TAGS_MAX, THUMB_SIZES, VARIANTS_DEFAULT, VARIANTS_MAX, VARIANTS_MIN,
    WORK_SIZE_MAX, WORK_SIZE_MIN,
)
from panelpaint.panels import Direction
from panelpaint.panels.edit import Axis
from panelpaint.store.rework import Hints
from panelpaint.store.schema import DeliveryStatus, PanelCheck, ReviewStatus, Role, RunStatus
from panelpaint.store.webhooks import EVENT_FAILED, EVENT_FINISHED

from .errors import RETRY_AFTER_SECONDS
from .services.batches import BatchState, PageStage
from .services.review import DECISIONS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# A row id; a path id outside it answers 404, a field outside it 400.
ID = {"type": "integer", "minimum": 1, "maximum": ID_MAX}


def _id(name: str, what: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": ID, "description": what}


ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "404": {"$ref": "#/components/responses/NotFound"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}
# Colours as the job store reads them: "#rrggbb" (the "#" may be left out); it writes "#rrggbb".
HEX_IN = "^#?[0-9a-fA-F]{6}$"
SEED = {"type": "integer", "minimum": 0, "maximum": SEED_MAX,
        "description": "A variant seed; left out (or null), the canonical colouring"}
BACKGROUND = {"type": "string", "enum": [b.value for b in Background]}
DIRECTION = {"type": "string", "enum": [d.value for d in Direction]}
BAD = {"$ref": "#/components/responses/BadRequest"}
TAGS_FIELD = {"type": "string", "description": f"Comma separated: at most {TAGS_MAX} tags of {TAG_MAX} characters"}
HINTS = {"type": "array", "items": {"$ref": "#/components/schemas/Hint"}, "maxItems": HINTS_MAX}
FORBIDDEN = {"$ref": "#/components/responses/Forbidden"}
CONFLICT = {"$ref": "#/components/responses/Conflict"}
FILE = {"description": "The file", "content": {"image/png": {}, "application/octet-stream": {}},
        "headers": {"X-Content-Type-Options": {"schema": {"type": "string", "enum": ["nosniff"]}}}}
# The status endpoints that clients poll (`web.polling`): an ETag on the answer, 304 for a match.
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "The ETag of the last answer: 304 with no body while nothing shown has changed"}
POLLED = {"ETag": {"schema": {"type": "string"}}, "Cache-Control": {"schema": {"type": "string"}}}


def _polled(schema: dict, description: str) -> dict[str, dict]:
    """The 200 (tagged) and 304 answers of a polled status endpoint."""
    return {"200": {**_json(schema, description), "headers": POLLED},
            "304": {"description": "Not modified since the ETag sent in If-None-Match", "headers": POLLED}}


BATCH_FORM = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "style_id": {**ID, "description": "A style of your studio's library"},
        "style_image": {"type": "string", "format": "binary", "description": "Or upload a new style reference"},
        "style_name": {"type": "string"},
        "style_tags": TAGS_FIELD,
        "direction": {**DIRECTION, "default": Direction.ltr.value},
        "work_size": {"type": "integer", "minimum": WORK_SIZE_MIN, "maximum": WORK_SIZE_MAX},
        "seed": {**SEED, "description": "A variant seed for every page; left out, the canonical colouring"},
        "background": {**BACKGROUND, "description": "The background of every panel; left out, each style's own"},
        "layers": {"type": "array", "items": {"type": "string", "enum": [f.value for f in formats.LAYERED]},
                   "description": "Layered files every page gets (left out: none)"},
        "colour_anyway": {"type": "boolean", "default": False,
                          "description": "Colour pages that arrive in colour too; left out, they are skipped "
                                         "(status skipped: already coloured)"},
        "series": {"type": "string", "maxLength": NAME_MAX,
                   "description": "The book, for the CBZ's ComicInfo.xml; left out, the batch's name"},
        "number": {"type": "string", "maxLength": NAME_MAX, "description": "Issue or chapter number, e.g. 3 or 12.5"},
        "check_panels": {"type": "boolean", "default": False,
                         "description": "Check panels first: each page waits after panel detection until its "
                                        "boxes are confirmed (POST /api/v1/pages/{page_id}/panels/confirm)"},
        "pages": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "Page images (PNG, JPEG, TIFF, WebP) and/or ZIP/CBZ archives"},
    },
    "required": ["name", "pages"],
}


def document(server_url: str = "") -> dict[str, Any]:
    """The OpenAPI 3.0 description of /api/v1, with `server_url` as its server."""
    page_id = _id("page_id", "Page id")
    batch_id = _id("batch_id", "Batch id")
    scope = {"name": "scope", "in": "query", "description": "approved pages only (default) or every finished page",
             "schema": {"type": "string", "enum": ["approved", "all"], "default": "approved"}}
    paths: dict[str, Any] = {
        "/api/v1/me": {"get": {"summary": "The token's user", "tags": ["account"],
                               "responses": {"200": _json(_ref("User"), "The user"), **ERRORS}}},
        "/api/v1/styles": {
            "get": {"summary": "List the studio's style references", "tags": ["styles"],
                    "parameters": [{"name": "tag", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "styles": {"type": "array", "items": _ref("Style")}}}, "Styles"), **ERRORS}},
            "post": {"summary": "Upload a style reference", "tags": ["styles"],
                     "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                         "type": "object", "required": ["name", "image"], "properties": {
                             "name": {"type": "string", "maxLength": NAME_MAX}, "tags": TAGS_FIELD,
                             "image": {"type": "string", "format": "binary"}}}}}},
                     "responses": {"201": _json(_ref("Style"), "Created"),
                                   "400": {"$ref": "#/components/responses/BadRequest"},
                                   "403": {"$ref": "#/components/responses/Forbidden"}, **ERRORS}},
        },
        "/api/v1/styles/{style_id}": {
            "get": {"summary": "One style, with its colour key", "tags": ["styles"],
                    "parameters": [_id("style_id", "Style id")],
                    "responses": {"200": _json(_ref("Style"), "The style"), **ERRORS}},
            "patch": {"summary": "Edit a style's colour key: palette, snapping, background", "tags": ["styles"],
                      "description": "Only the fields sent change; pages coloured from then on use them.",
                      "parameters": [_id("style_id", "Style id")],
                      "requestBody": {"required": True,
                                      "content": {"application/json": {"schema": _ref("StylePatch")}}},
                      "responses": {"200": _json(_ref("Style"), "Changed"), "400": BAD, "403": FORBIDDEN, **ERRORS}}},
        "/api/v1/styles/{style_id}/palette/extract": {"post": {
            "summary": "Extract the style's palette from its image again", "tags": ["styles"],
            "parameters": [_id("style_id", "Style id")],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "properties": {
                    "k": {"type": "integer", "minimum": 1, "maximum": SWATCHES_MAX, "default": PALETTE_COLOURS,
                          "description": "How many colours at most"}}}}}},
            "responses": {"200": _json(_ref("Style"), "Extracted"), "400": BAD, "403": FORBIDDEN, **ERRORS}}},
        "/api/v1/styles/{style_id}/image": {"get": {"summary": "A style's image", "tags": ["styles"],
                                                    "parameters": [_id("style_id", "Style id")],
                                                    "responses": {"200": FILE, **ERRORS}}},
        "/api/v1/batches": {
            "get": {"summary": "List batches, newest first", "tags": ["batches"],
                    "parameters": [{"name": "limit", "in": "query", "schema": {
                                       "type": "integer", "minimum": 1, "maximum": BATCHES_LISTED_MAX,
                                       "default": BATCHES_LISTED_DEFAULT}},
                                   {"name": "offset", "in": "query", "schema": {
                                       "type": "integer", "minimum": 0, "maximum": OFFSET_MAX, "default": 0}},
                                   IF_NONE_MATCH],
                    "responses": {**_polled({"type": "object", "properties": {
                        "batches": {"type": "array", "items": _ref("Batch")}}}, "Batches"), "400": BAD, **ERRORS}},
            "post": {"summary": "Create a batch with its pages",
                     "description": "Unreadable files become failed pages listed under `rejected` with their "
                                    "error; the good pages are queued.", "tags": ["batches"],
                     "requestBody": {"required": True,
                                     "content": {"multipart/form-data": {"schema": BATCH_FORM}}},
                     "responses": {"201": _json(_ref("Submitted"), "Created"),
                                   "400": {"$ref": "#/components/responses/BadRequest"},
                                   "403": {"$ref": "#/components/responses/Forbidden"},
                                   "413": {"$ref": "#/components/responses/TooLarge"}, **ERRORS}},
        },
        "/api/v1/batches/{batch_id}": {"get": {"summary": "Batch status with its pages", "tags": ["batches"],
                                               "parameters": [batch_id, IF_NONE_MATCH],
                                               "responses": {**_polled(_ref("Batch"), "The batch"), **ERRORS}}},
        "/api/v1/batches/{batch_id}/pages": {"post": {
            "summary": "Add pages to a batch", "tags": ["batches"], "parameters": [batch_id],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["pages"],
                "properties": {"pages": BATCH_FORM["properties"]["pages"]}}}}},
            "responses": {"201": _json(_ref("Submitted"), "Added"),
                          "400": {"$ref": "#/components/responses/BadRequest"}, "409": CONFLICT,
                          "413": {"$ref": "#/components/responses/TooLarge"}, **ERRORS}}},
        "/api/v1/batches/{batch_id}/cancel": {"post": {
            "summary": "Cancel a batch: queued pages are dropped, running ones stop at the next panel",
            "tags": ["batches"], "parameters": [batch_id],
            "responses": {"200": _json(_ref("Batch"), "Cancelled"), **ERRORS}}},
        "/api/v1/batches/{batch_id}/download": {"get": {
            "summary": "Download coloured pages as ZIP or CBZ (the CBZ with its ComicInfo.xml)", "tags": ["downloads"],
            "parameters": [batch_id,
                           {"name": "format", "in": "query", "schema": {"type": "string", "enum": list(formats.ARCHIVES)}},
                           scope],
            "responses": {"200": {"description": "The archive", "content": {
                media: {} for media in formats.ARCHIVES.values()}},
                "409": {"$ref": "#/components/responses/Conflict"}, **ERRORS}}},
        "/api/v1/batches/{batch_id}/layers/{kind}": {"get": {
            "summary": "Every page's layered file (PSD or OpenRaster) in one ZIP; 409 when the batch did not "
                       "ask for that kind or no page qualifies", "tags": ["downloads"],
            "parameters": [batch_id, {"name": "kind", "in": "path", "required": True, "schema": {
                "type": "string", "enum": list(formats.LAYERED)}}, scope],
            "responses": {"200": {"description": "The ZIP", "content": {formats.ARCHIVES["zip"]: {}}},
                          "409": CONFLICT, **ERRORS}}},
        "/api/v1/webhooks": {
            "get": {"summary": "The studio's webhook endpoints with their signing secrets (admins)", "tags": ["webhooks"],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "webhooks": {"type": "array", "items": _ref("Webhook")}}}, "Endpoints"), **ERRORS}},
            "post": {"summary": "Add an endpoint told when a batch finishes or fails (admins)", "tags": ["webhooks"],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["url"], "properties": {
                             "url": {"type": "string", "maxLength": 2000, "description": "http:// or https://"}}}}}},
                     "responses": {"201": _json(_ref("Webhook"), "Added, with its secret"), "400": BAD, **ERRORS}}},
        "/api/v1/webhooks/{webhook_id}": {"delete": {
            "summary": "Remove an endpoint and its delivery log (admins)", "tags": ["webhooks"],
            "parameters": [_id("webhook_id", "Webhook id")],
            "responses": {"204": {"description": "Removed"}, **ERRORS}}},
        "/api/v1/webhooks/deliveries": {"get": {
            "summary": "The delivery log, newest first: attempts, last answer, next try (admins)", "tags": ["webhooks"],
            "responses": {"200": _json({"type": "object", "properties": {
                "deliveries": {"type": "array", "items": _ref("WebhookDelivery")}}}, "Deliveries"), **ERRORS}}},
        "/api/v1/pages/{page_id}": {"get": {"summary": "Page status, panels and comments", "tags": ["pages"],
                                            "parameters": [page_id],
                                            "responses": {"200": _json(_ref("Page"), "The page"), **ERRORS}}},
        "/api/v1/pages/{page_id}/retry": {"post": {
            "summary": "Queue a failed page again", "tags": ["pages"], "parameters": [page_id],
            "responses": {"202": _json(_ref("Page"), "Queued"), "409": {"$ref": "#/components/responses/Conflict"},
                          **ERRORS}}},
        "/api/v1/pages/{page_id}/colour-anyway": {"post": {
            "summary": "Colour a page that was skipped because it arrived already coloured", "tags": ["pages"],
            "parameters": [page_id],
            "responses": {"202": _json(_ref("Page"), "Queued"), "409": CONFLICT, **ERRORS}}},
        "/api/v1/pages/{page_id}/review": {"post": {
            "summary": "Approve or reject a page or one of its panels (reviewers and admins)", "tags": ["review"],
            "parameters": [page_id],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["decision"], "properties": {
                    "decision": {"type": "string", "enum": [d.value for d in DECISIONS]},
                    "comment": {"type": "string"}, "panel_id": ID}}}}},
            "responses": {"200": _json(_ref("Page"), "Recorded"), "400": BAD, "403": FORBIDDEN, "409": CONFLICT,
                          **ERRORS}}},
        "/api/v1/pages/{page_id}/review/undo": {"post": {
            "summary": "Undo the decision on a page or one of its panels: pending again, the decision kept "
                       "in the history (marked undone) and the event log", "tags": ["review"],
            "parameters": [page_id],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"panel_id": ID}}}}},
            "responses": {"200": _json(_ref("Page"), "Undone"), "403": FORBIDDEN,
                          "409": {**CONFLICT, "description": "Nothing to undo: the page or panel is pending"},
                          **ERRORS}}},
        "/api/v1/batches/{batch_id}/rerender-rejected": {"post": {
            "summary": "Render everything rejected in a batch again: each rejected page whole, each rejected "
                       "panel on its own", "tags": ["review"], "parameters": [batch_id],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "style_id": {**ID, "description": "Another style (with its colour key); "
                                                                   "left out, each keeps its own"},
                    "seed": {**SEED, "nullable": True},
                    "hints": {"type": "string", "enum": [h.value for h in Hints], "default": Hints.keep.value,
                              "description": "Keep each page's and panel's colour hints, or clear them"}}}}}},
            "responses": {"202": _json({"type": "object", "properties": {
                "renders": {"type": "array", "items": _ref("Render")},
                "skipped": {"type": "array", "items": {"type": "object", "properties": {
                    "page_id": {"type": "integer"}, "panel_id": {"type": "integer", "nullable": True},
                    "reason": {"type": "string"}}}}}}, "Queued"),
                "400": BAD, "403": FORBIDDEN,
                "409": {**CONFLICT, "description": "Nothing is rejected, or the batch is cancelled"}, **ERRORS}}},
        "/api/v1/pages/{page_id}/rerender": {"post": {
            "summary": "Render a page or panel again with another style, seed or colour hints", "tags": ["review"],
            "parameters": [page_id],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "panel_id": ID, "style_id": ID,
                    "seed": {**SEED, "nullable": True},
                    "hints": {**HINTS, "description": "Each on the panel re-rendered (on some panel, for the page)"}}}}}},
            "responses": {"202": _json(_ref("Render"), "Queued"), "400": BAD, "409": CONFLICT, **ERRORS}}},
        "/api/v1/pages/{page_id}/panels": {
            "get": {"summary": "The page's panel boxes, each with detection's confidence, and its panel check",
                    "tags": ["panels"], "parameters": [page_id],
                    "responses": {"200": _json(_ref("PagePanels"), "The panels"), **ERRORS}},
            "put": {"summary": "Edit the page's boxes: keep, move, resize, draw or delete", "tags": ["panels"],
                    "description": "The list is the page's new boxes. An entry with the `id` of one of the page's "
                                   "panels keeps it (moved or resized when its bbox differs); an entry without "
                                   "one is a new box; a panel left out is removed. The reading order is numbered "
                                   "again for the page's direction. On a finished page only the changed and new "
                                   "panels are queued for a panel re-render. Refused (409) while the page is being "
                                   "coloured.",
                    "parameters": [page_id],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["panels"], "properties": {
                            "panels": {"type": "array", "minItems": 1, "maxItems": PANELS_MAX,
                                       "items": _ref("PanelBox")},
                            "confirm": {"type": "boolean", "default": False,
                                        "description": "Also confirm the boxes of a page held for its panel check"}}}}}},
                    "responses": {"200": _json(_ref("PanelEdit"), "Saved"), "400": BAD, "403": FORBIDDEN,
                                  "409": CONFLICT, **ERRORS}}},
        "/api/v1/pages/{page_id}/panels/merge": {"post": {
            "summary": "Merge two or more panels into the one box that holds them", "tags": ["panels"],
            "parameters": [page_id],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["panel_ids"], "properties": {
                    "panel_ids": {"type": "array", "minItems": 2, "items": {"type": "integer"}}}}}}},
            "responses": {"200": _json(_ref("PanelEdit"), "Merged"), "400": BAD, "403": FORBIDDEN, "409": CONFLICT,
                          **ERRORS}}},
        "/api/v1/pages/{page_id}/panels/split": {"post": {
            "summary": "Split a panel in two at a column (axis x) or a row (axis y)", "tags": ["panels"],
            "parameters": [page_id],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["panel_id", "axis", "at"], "properties": {
                    "panel_id": {"type": "integer"},
                    "axis": {"type": "string", "enum": [a.value for a in Axis]},
                    "at": {"type": "integer", "description": f"The page coordinate of the cut; each part keeps "
                                                             f"at least {PANEL_SIDE_MIN} pixels"}}}}}},
            "responses": {"200": _json(_ref("PanelEdit"), "Split"), "400": BAD, "403": FORBIDDEN, "409": CONFLICT,
                          **ERRORS}}},
        "/api/v1/pages/{page_id}/panels/confirm": {"post": {
            "summary": "Confirm the boxes of a page held for its panel check: its colouring goes on",
            "tags": ["panels"], "parameters": [page_id],
            "responses": {"202": _json(_ref("PagePanels"), "Confirmed; the page's render is sent"), "403": FORBIDDEN,
                          "409": CONFLICT, **ERRORS}}},
        "/api/v1/pages/{page_id}/variants": {
            "get": {"summary": "The page's variant sets, newest first", "tags": ["review"], "parameters": [page_id],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "variant_sets": {"type": "array", "items": _ref("VariantSet")}}}, "Variant sets"), **ERRORS}},
            "post": {"summary": "Colour a finished page N times with random seeds, to pick one",
                     "description": "The page keeps its result while the variants run; "
                                    "`POST /api/v1/renders/{render_id}/pick` makes one the result.",
                     "tags": ["review"], "parameters": [page_id],
                     "requestBody": {"required": False, "content": {"application/json": {"schema": {
                         "type": "object", "properties": {
                             "count": {"type": "integer", "minimum": VARIANTS_MIN, "maximum": VARIANTS_MAX,
                                       "default": VARIANTS_DEFAULT},
                             "style_id": {**ID, "description": "Default: the style of the page's result"},
                             "hints": {**HINTS, "description": "Default: the hints of the page's result"}}}}}},
                     "responses": {"202": _json(_ref("VariantSet"), "Queued"), "400": BAD, "409": CONFLICT,
                                   **ERRORS}}},
        "/api/v1/renders/{render_id}/pick": {"post": {
            "summary": "Make a finished variant its page's result (reviews go back to pending)", "tags": ["review"],
            "parameters": [_id("render_id", "Render id of a variant")],
            "responses": {"200": _json(_ref("Page"), "Picked"), "409": CONFLICT, **ERRORS}}},
        "/api/v1/pages/{page_id}/renders": {"get": {
            "summary": "Every render of a page, newest first", "tags": ["pages"], "parameters": [page_id],
            "responses": {"200": _json({"type": "object", "properties": {
                "renders": {"type": "array", "items": _ref("Render")}}}, "Renders"), **ERRORS}}},
        "/api/v1/pages/{page_id}/image/{kind}": {"get": {
            "summary": "A page image: the source line art or the coloured result (optionally a thumbnail)",
            "tags": ["pages"],
            "parameters": [page_id, {"name": "kind", "in": "path", "required": True, "schema": {
                "type": "string", "enum": list(formats.IMAGE_KINDS)}},
                {"name": "size", "in": "query", "schema": {"type": "integer", "enum": list(THUMB_SIZES)}}],
            "responses": {"200": FILE, "400": BAD, **ERRORS}}},
        "/api/v1/pages/{page_id}/download/{fmt}": {"get": {
            "summary": "One page's deliverable: PNG composite, layered PSD or OpenRaster", "tags": ["downloads"],
            "parameters": [page_id, {"name": "fmt", "in": "path", "required": True, "schema": {
                "type": "string", "enum": list(formats.PAGE_FILES)}}],
            "responses": {"200": FILE, **ERRORS}}},
        "/api/v1/renders/{render_id}": {"get": {"summary": "One render", "tags": ["pages"],
                                                "parameters": [_id("render_id", "Render id")],
                                                "responses": {"200": _json(_ref("Render"), "The render"), **ERRORS}}},
        "/api/v1/renders/{render_id}/files/{kind}": {"get": {
            "summary": "A file a render produced (its `files` lists them)", "tags": ["pages"],
            "parameters": [_id("render_id", "Render id"),
                           {"name": "kind", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": FILE, **ERRORS}}},
    }
    error = {"type": "object", "required": ["error", "message", "status"], "properties": {
        "error": {"type": "string"}, "message": {"type": "string"}, "status": {"type": "integer"}}}
    status = {"type": "string", "enum": [s.value for s in RunStatus]}
    review = {"type": "string", "enum": [s.value for s in ReviewStatus]}
    schemas = {
        "Error": error,
        "User": {"type": "object", "properties": {
            "id": {"type": "integer"}, "email": {"type": "string"}, "role": {"type": "string",
                                                                            "enum": [r.value for r in Role]},
            "studio_id": {"type": "integer"}, "studio": {"type": "string"}}},
        "Swatch": {"type": "object", "required": ["color"], "properties": {
            "color": {"type": "string", "pattern": HEX_IN, "description": "#rrggbb (stored and returned lower case)"},
            "share": {"type": "number", "minimum": 0, "maximum": 1, "default": 0,
                      "description": "The share of the reference's coloured pixels it stands for"}}},
        "Palette": {"type": "array", "items": _ref("Swatch"), "minItems": 1, "maxItems": SWATCHES_MAX},
        "Style": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "tags": {"type": "array", "maxItems": TAGS_MAX,
                                                                    "items": {"type": "string", "maxLength": TAG_MAX}},
            "width": {"type": "integer"}, "height": {"type": "integer"}, "created_at": {"type": "string"},
            "image_url": {"type": "string"},
            "palette": {"allOf": [_ref("Palette")], "nullable": True,
                        "description": "The colour key; null: extracted from the image when a page is coloured"},
            "snap_palette": {"type": "boolean", "description": "Flats snap to the palette"},
            "background": {**BACKGROUND, "description": "paper: panel backgrounds stay white"}}},
        "StylePatch": {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
            "palette": _ref("Palette"), "snap_palette": {"type": "boolean"}, "background": BACKGROUND}},
        "VariantSet": {"type": "object", "properties": {
            "id": {"type": "integer"}, "page_id": {"type": "integer"}, "size": {"type": "integer"},
            "style_id": {"type": "integer", "nullable": True}, "created_at": {"type": "string"},
            "picked_render_id": {"type": "integer", "nullable": True},
            "picked_at": {"type": "string", "nullable": True},
            "renders": {"type": "array", "items": _ref("Render")}}},
        "Webhook": {"type": "object", "properties": {
            "id": {"type": "integer"}, "url": {"type": "string"}, "active": {"type": "boolean"},
            "secret": {"type": "string", "description": "HMAC-SHA256 key of X-Panelpaint-Signature"},
            "created_at": {"type": "string"}}},
        "WebhookDelivery": {"type": "object", "properties": {
            "id": {"type": "integer"}, "webhook_id": {"type": "integer"}, "batch_id": {"type": "integer", "nullable": True},
            "event": {"type": "string", "enum": [EVENT_FINISHED, EVENT_FAILED]},
            "status": {"type": "string", "enum": [s.value for s in DeliveryStatus]},
            "attempts": {"type": "integer"}, "last_status_code": {"type": "integer", "nullable": True},
            "last_error": {"type": "string", "nullable": True}, "created_at": {"type": "string"},
            "next_attempt_at": {"type": "string", "nullable": True},
            "delivered_at": {"type": "string", "nullable": True}, "payload": {"type": "object"}}},
        "Panel": {"type": "object", "description": "A panel of the page (`panelpaint.panels.Panel`, as panels.json)",
                  "properties": {
                      "id": {"type": "integer"},
                      "order": {"type": "integer", "description": "Reading order, 0-based"},
                      "bbox": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
                               "description": "[x, y, w, h] in page pixels"},
                      "polygon": {"type": "array", "items": {"type": "array", "items": {"type": "integer"},
                                                             "minItems": 2, "maxItems": 2},
                                  "description": "[[x, y], ...]: the outline's corner pixels, inclusive"},
                      "confidence": {"type": "number", "minimum": 0, "maximum": 1,
                                     "description": "How sure detection is of this box; 1.0 for a box a person "
                                                    "drew or moved"},
                      "review_status": review, "style_id": {"type": "integer", "nullable": True},
                      "hints": {"type": "array", "items": _ref("Hint")}}},
        "PanelBox": {"type": "object", "required": ["bbox"], "description": "A box of a panel edit", "properties": {
            "id": {"type": "integer", "description": "The page's panel this box keeps; left out, a new box"},
            "bbox": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
                     "description": f"[x, y, w, h] in page pixels, inside the page, w and h at least {PANEL_SIDE_MIN}"},
            "polygon": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}},
                        "description": "Optional outline inside the bbox; left out, the bbox's rectangle (or a "
                                       "kept panel's own outline)"}}},
        "PanelCheck": {"type": "object", "properties": {
            "layout_confidence": {"type": "number", "nullable": True,
                                  "description": "Detection's confidence in the page's layout (its weakest panel)"},
            "panel_check": {"type": "string", "nullable": True, "enum": [c.value for c in PanelCheck]},
            "awaiting_check": {"type": "boolean", "description": "Colouring waits for the boxes to be confirmed"},
            "check_below": {"type": "number", "description": "PANELPAINT_PANEL_CHECK_BELOW: a layout less sure "
                                                             "than this is held for a check"},
            "unsure": {"type": "boolean"}}},
        "PagePanels": {"allOf": [_ref("PanelCheck"), {"type": "object", "properties": {
            "page_id": {"type": "integer"}, "width": {"type": "integer"}, "height": {"type": "integer"},
            "direction": DIRECTION, "panels": {"type": "array", "items": _ref("Panel")}}}]},
        "PanelEdit": {"allOf": [_ref("PagePanels"), {"type": "object", "properties": {
            "edit": {"type": "object", "properties": {
                "kept": {"type": "array", "items": {"type": "integer"}},
                "changed": {"type": "array", "items": {"type": "integer"}},
                "added": {"type": "array", "items": {"type": "integer"}},
                "removed": {"type": "array", "items": {"type": "integer"}},
                "rerenders": {"type": "array", "items": {"type": "integer"},
                              "description": "The panel re-renders queued: one per changed or new panel"},
                "released": {"type": "boolean"}}}}}]},
        "Hint": {"type": "object", "required": ["x", "y", "color"], "properties": {
            "x": {"type": "number", "minimum": 0, "description": "Page pixels, less than the page's width"},
            "y": {"type": "number", "minimum": 0, "description": "Page pixels, less than the page's height"},
            "color": {"type": "string", "pattern": HEX_IN}}},
        "Page": {"type": "object", "properties": {
            "id": {"type": "integer"}, "batch_id": {"type": "integer"}, "position": {"type": "integer"},
            "name": {"type": "string"}, "status": status, "error": {"type": "string", "nullable": True},
            "review_status": review, "width": {"type": "integer", "nullable": True},
            "height": {"type": "integer", "nullable": True}, "panels_done": {"type": "integer"},
            "panels_total": {"type": "integer"}, "render_id": {"type": "integer", "nullable": True},
            "stage": {"type": "string", "enum": [s.value for s in PageStage]},
            "stage_label": {"type": "string", "description": "The stage in words, e.g. finishing: panel 3 of 4"},
            "progress": {"type": "number", "minimum": 0, "maximum": 1,
                         "description": "Colouring fills 0-0.5 by elapsed time against the batch's rate, "
                                        "finishing 0.5-1 panel by panel"},
            "thumb_url": {"type": "string", "nullable": True,
                          "description": "null until a worker has made the thumbnail"},
            "has_source": {"type": "boolean", "description": "false: the upload was unreadable (no retry)"},
            "result_url": {"type": "string", "nullable": True},
            "downloads": {"type": "object", "additionalProperties": {"type": "string"}},
            "panel_check": {"type": "string", "nullable": True, "enum": [c.value for c in PanelCheck],
                            "description": "awaiting: held after panel detection until its boxes are confirmed"},
            "layout_confidence": {"type": "number", "nullable": True},
            "awaiting_check": {"type": "boolean", "description": "One page only: colouring waits for a panel check"},
            "check_below": {"type": "number", "description": "One page only: PANELPAINT_PANEL_CHECK_BELOW"},
            "unsure": {"type": "boolean", "description": "One page only: the layout is below check_below"},
            "panels": {"type": "array", "items": _ref("Panel")},
            "comments": {"type": "array", "items": {"type": "object"}}}},
        "Batch": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in BatchState]},
            "unpacking": {"type": "array", "description": "Archives an io worker is still unpacking into pages",
                          "items": {"type": "object", "properties": {
                              "id": {"type": "integer"}, "status": {"type": "string"},
                              "files": {"type": "array", "items": {"type": "string"}},
                              "pages_added": {"type": "integer"}, "pages_expected": {"type": "integer"}}}},
            "cancelled": {"type": "boolean"}, "direction": DIRECTION,
            "default_style_id": {"type": "integer", "nullable": True}, "options": {"type": "object"},
            "created_at": {"type": "string"}, "total": {"type": "integer"}, "finished": {"type": "integer"},
            "summary": {"type": "string"}, "progress": {"type": "object"},
            "rate": {"type": "object", "nullable": True, "description": "This batch's measured rate (its last "
                     "finished pages): pages, seconds_per_page (throughput), page_seconds (one page's time)",
                     "properties": {"pages": {"type": "integer"}, "seconds_per_page": {"type": "number"},
                                    "page_seconds": {"type": "number"}}},
            "eta_seconds": {"type": "integer", "nullable": True,
                            "description": "Seconds until the pages left are done at the measured rate "
                                           "(null in the batch list)"},
            "eta": {"type": "string", "description": "The ETA in words"},
            "mine": {"type": "boolean", "description": "The caller sent this batch"},
            "pages": {"type": "array", "items": _ref("Page")}}},
        "Submitted": {"allOf": [_ref("Batch"), {"type": "object", "properties": {
            "added": {"type": "array", "items": {"type": "integer"}},
            "warning": {"type": "string", "nullable": True,
                        "description": "Set when the pages were saved but could not be sent to the workers yet"},
            "rejected": {"type": "array", "items": {"type": "object", "properties": {
                "page_id": {"type": "integer"}, "name": {"type": "string"}, "error": {"type": "string"}}}}}}]},
        "Render": {"type": "object", "properties": {
            "id": {"type": "integer"}, "page_id": {"type": "integer"}, "panel_id": {"type": "integer", "nullable": True},
            "version": {"type": "integer"}, "status": status, "style_id": {"type": "integer", "nullable": True},
            "seed": {**SEED, "nullable": True}, "hints": {"type": "array", "items": _ref("Hint")},
            "variant_set_id": {"type": "integer", "nullable": True,
                               "description": "Set for the renders of a variant set"},
            "model_version": {"type": "string", "nullable": True}, "attempt": {"type": "integer"},
            "error": {"type": "string", "nullable": True}, "degraded": {"type": "string", "nullable": True},
            "worker": {"type": "string", "nullable": True}, "timings": {"type": "object"},
            "queued_at": {"type": "string"}, "finished_at": {"type": "string", "nullable": True},
            "files": {"type": "object", "additionalProperties": {"type": "string"}}}},
    }

    def err(description: str) -> dict:
        return _json(_ref("Error"), description)

    return {
        "openapi": "3.0.3",
        "info": {"title": "panelpaint API", "version": "1",
                 "description": "Batch colouring of comic pages. Authenticate with an API token from the "
                                "dashboard's account page: `Authorization: Bearer <token>`."},
        "servers": [{"url": server_url or "/"}],
        "security": [{"bearer": []}],
        "tags": [{"name": t} for t in ("account", "styles", "batches", "pages", "panels", "review", "downloads", "webhooks")],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
            "responses": {
                "BadRequest": err("The request or an upload is invalid; `message` says why"),
                "Unauthorized": err("Missing, unknown or revoked token"),
                "Forbidden": err("The token's role may not do this"),
                "NotFound": err("No such row in your studio"),
                "Conflict": err("Not possible in the current state"),
                "TooLarge": err("The upload exceeds the size limit"),
                "Unavailable": {**err("The database cannot be reached just now (ask again after Retry-After "
                                      "seconds), or the work was saved but the queue cannot be reached yet"),
                                "headers": {"Retry-After": {"schema": {"type": "integer",
                                                                       "example": RETRY_AFTER_SECONDS}}}},
            },
        },
    }
