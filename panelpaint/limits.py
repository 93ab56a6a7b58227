"""The service's fixed limits and ranges, one definition each.

The job store, the web forms, the API's OpenAPI document, the command line and the templates all
read them from here; docs/deploy.md (Limits) lists them with the limits that are settings.
"""
from __future__ import annotations

# The long side of a panel fed to the network (a batch option, PANELPAINT_WORK_SIZE, `render --size`).
WORK_SIZE_MIN, WORK_SIZE_MAX = 64, 4096

# The shortest side a page may have, in pixels: a narrower strip has no room for a panel and its
# frame, so it is refused at upload, naming the file, rather than failing in the io worker.
PAGE_SIDE_MIN = 16

# Variant seeds, 0..SEED_MAX: a signed 32-bit integer, which every client and JSON parser holds.
# No seed means the canonical colouring.
SEED_MAX = 2**31 - 1

# A variant set: how many re-renders with random seeds are asked for together.
VARIANTS_MIN, VARIANTS_MAX, VARIANTS_DEFAULT = 2, 8, 4

# A style's colour key: at most SWATCHES_MAX swatches; PALETTE_COLOURS are extracted for a new style.
SWATCHES_MAX = 32
PALETTE_COLOURS = 8

# Text the job store keeps: an error message, a review comment (longer is cut).
TEXT_MAX = 10_000
# A free comment on a page (longer is cut).
COMMENT_MAX = 5_000
# Names of batches, styles and studios (refused when longer); page and file labels (cut).
NAME_MAX = 200
# One tag of a style, lower-cased; how many tags one style may have.
TAG_MAX = 64
TAGS_MAX = 20
# Colour hint dots of one render (each must lie on the page, on the panel it colours).
HINTS_MAX = 200
# An API token's name.
TOKEN_NAME_MAX = 100
# An e-mail address (RFC 5321's path limit).
EMAIL_MAX = 320
# Row ids: whole numbers 1..ID_MAX (PostgreSQL's INTEGER key). A bigger id names no row: a 404
# in a URL, a 400 in a request field.
ID_MAX = 2**31 - 1
# Batches one list request returns (and the default); how far a list request may skip into them.
BATCHES_LISTED_MAX = 1_000
BATCHES_LISTED_DEFAULT = 100
OFFSET_MAX = 2**31 - 1
# Events one query returns.
EVENTS_LISTED_MAX = 10_000

# The long side of the page thumbnails the dashboard and the API serve.
THUMB_SIZES = (180, 360, 720)

# A running render whose worker has not reported for this long may be taken over by a redelivered
# task (the default of PANELPAINT_RENDER_LEASE_SECONDS and of the job store's claims).
RENDER_LEASE_SECONDS = 120

# A panel box a person draws or edits: each side at least PANEL_SIDE_MIN page pixels (smaller is a
# slip of the mouse, not a panel); at most PANELS_MAX panels on a page.
PANEL_SIDE_MIN = 16
PANELS_MAX = 64
