"""What a coloured page is delivered as, one definition each: the outputs a render encodes, the
files a page offers, a batch's archives, and the media type of every file the service serves."""
from __future__ import annotations

import enum


class Output(enum.StrEnum):
    """An output format a render encodes (`panelpaint.export`)."""

    PNG = "png"  # composite, flats, shading and lines as PNGs
    PSD = "psd"  # layered Photoshop file
    ORA = "ora"  # layered OpenRaster file
    JSON = "json"  # the panel geometry (panels.json)
    PREVIEW = "preview"  # a JPEG preview and thumbnail


ALL = frozenset(Output)
# Every page of a batch gets these; a batch may add the layered files ("layers").
ALWAYS = (Output.PNG, Output.JSON, Output.PREVIEW)
LAYERED = (Output.PSD, Output.ORA)
# What a person picks to receive (a batch's layers, `panelpaint render --format`).
FILES = (Output.PNG, *LAYERED)

# A page's downloads, by the name in their URL -> the render output (`Render.outputs` key) holding them.
PAGE_FILES = {"png": "composite", "psd": "psd", "ora": "ora", "flats.png": "flats", "lines.png": "lines"}
# The images of a page by kind: its source line art, its result, or a file of its current render.
IMAGE_KINDS = ("source", "result", "composite", "flats", "lines", "preview")
# A batch's (or `panelpaint render`'s) archive of coloured pages -> its media type.
ARCHIVES = {"zip": "application/zip", "cbz": "application/vnd.comicbook+zip"}

# Media types of stored files, by suffix.
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".tif": "image/tiff", ".tiff": "image/tiff", ".zip": ARCHIVES["zip"], ".cbz": ARCHIVES["cbz"],
               ".psd": "image/vnd.adobe.photoshop", ".ora": "image/openraster"}


def batch_formats(layered: list[str] | tuple[str, ...]) -> list[str]:
    """The outputs of a batch's pages when it asks for these layered files (none: no PSD or ORA
    is made); unknown names are ignored."""
    return [*ALWAYS, *(Output(f) for f in LAYERED if f in layered)]


def layered_files(batch_outputs: list[str] | None) -> list[Output]:
    """The layered files a batch's pages carry, from its `formats` option (absent: a batch made
    before the option existed, whose pages got every output)."""
    if batch_outputs is None:
        return list(LAYERED)
    return [f for f in LAYERED if f in batch_outputs]
