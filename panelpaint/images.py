"""Safe image opening: an explicit format allow-list, the pixel-bomb guard as an error, normalised modes.

Every page, style reference and upload goes through `open_image`, so one bad file becomes one
`ImageError` with a readable message instead of a crash, a hang or a memory blow-up.
"""
from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# The formats a studio sends us; anything else (SVG, PSD, EPS, ...) is refused before decoding.
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "WEBP")
DEFAULT_MAX_PIXELS = 60_000_000

# A truncated file must fail loudly, never decode to a half-grey page.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """A file that is not a usable image; the message names the file and says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


Source = str | Path | bytes | bytearray | BinaryIO

# The largest file one page may be, derived from the pixel limit: 8 bytes a pixel is 16-bit RGBA
# stored uncompressed, the widest pixel a PNG or TIFF we decode carries (JPEG and WebP are 8-bit
# and compressed), and a page file is never larger than its raw pixels plus headers, ICC
# profiles and EXIF, which PAGE_FILE_OVERHEAD covers generously. An archive entry that unpacks
# to more than this cannot be a page we accept, so the io worker stops inflating it there.
MAX_BYTES_PER_PIXEL = 8
PAGE_FILE_OVERHEAD = 16 * 1024 * 1024
PIXELS_SETTING = "PANELPAINT_MAX_IMAGE_PIXELS"
ORIENTATION = 0x0112  # the EXIF tag exif_transpose reads; 5-8 swap width and height
_PILLOW_PIXELS = re.compile(r"\((\d+) pixels\)")


def page_file_bytes_limit(max_pixels: int) -> int:
    """The most bytes one page file may take when pages may have up to `max_pixels` pixels."""
    return max_pixels * MAX_BYTES_PER_PIXEL + PAGE_FILE_OVERHEAD


def too_large(name: str, max_pixels: int, pixels: int | None = None, size: tuple[int, int] | None = None) -> ImageError:
    """The one message for an image over the pixel limit: its size, our limit and the setting."""
    if size is not None:
        what = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels"
    elif pixels is not None:
        what = f"{pixels:,} pixels"
    else:
        what = "the image"
    return ImageError(f"{name}: {what} is too large: this service accepts at most {max_pixels:,} "
                      f"pixels an image ({PIXELS_SETTING})")


def _check_size(img: Image.Image, name: str, max_pixels: int) -> None:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise too_large(name, max_pixels, size=(width, height))


def normalize_mode(img: Image.Image) -> Image.Image:
    """RGB 8-bit from any mode: CMYK, 16-bit grey, palette, 1-bit; alpha is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit scans use the full 0..65535 range; 32-bit integer images from TIFF usually do too.
        top = 65535.0 if img.mode.startswith("I") and arr.max(initial=0) > 255 else 255.0
        if img.mode == "F":
            top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


@contextlib.contextmanager
def _opened(source: Source, name: str | None) -> Iterator[tuple[BinaryIO, str]]:
    """A seekable binary file for `source` and the name to report. A path is read from disk as
    Pillow needs it (never copied into memory whole), so checking a stored page costs its decoded
    pixels and no more."""
    if isinstance(source, (bytes, bytearray)):
        yield io.BytesIO(source), name or "image"
        return
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, after the image is decoded
        except OSError as exc:
            raise ImageError(f"{name or path.name}: cannot read file ({exc.strerror or exc})") from None
        with fh:
            yield fh, name or path.name
        return
    label = name or Path(str(getattr(source, "name", None) or "image")).name
    if not (hasattr(source, "seekable") and source.seekable()):
        source = io.BytesIO(source.read())
    yield source, label


@contextlib.contextmanager
def _decoded(source: Source, name: str | None, max_pixels: int | None,
             formats: tuple[str, ...]) -> Iterator[tuple[Image.Image, str]]:
    """The image fully decoded in its own mode (checked: allow-list, pixel limit, truncation), and
    its name, while its file is open."""
    limit = max_pixels or DEFAULT_MAX_PIXELS
    with _opened(source, name) as (fh, name):
        fh.seek(0)
        if not fh.read(1):
            raise ImageError(f"{name}: file is empty")
        # Pillow's own guard warns above MAX_IMAGE_PIXELS (an error here) and raises at twice it.
        Image.MAX_IMAGE_PIXELS = limit
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                fh.seek(0)
                with Image.open(fh, formats=list(formats)) as probe:
                    _check_size(probe, name, limit)
                    probe.verify()
                fh.seek(0)
                img = Image.open(fh, formats=list(formats))
                _check_size(img, name, limit)
                img.load()
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # Pillow's text quotes its own threshold (twice ours above 2x); only the size is kept.
            found = _PILLOW_PIXELS.search(str(exc))
            raise too_large(name, limit, int(found.group(1)) if found else None) from None
        except UnidentifiedImageError:
            allowed = ", ".join(formats)
            raise ImageError(f"{name}: not a recognised image (allowed formats: {allowed})") from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise ImageError(f"{name}: corrupt or truncated image ({exc})") from None
        yield img, name


def open_image(
    source: Source,
    *,
    name: str | None = None,
    max_pixels: int | None = None,
    formats: tuple[str, ...] = ALLOWED_FORMATS,
) -> Image.Image:
    """Decode `source` (path, bytes or seekable binary file) into a fully loaded RGB image.

    Raises `ImageError` for an unknown or disallowed format, a renamed non-image, a truncated or
    corrupt file, or more than `max_pixels` pixels (Pillow's decompression-bomb guard is kept on and
    its warning and error become this one message, naming our limit). EXIF orientation is applied;
    only the first frame of a multi-page TIFF or animated WebP is used.
    """
    with _decoded(source, name, max_pixels, formats) as (img, _name):
        try:
            img = ImageOps.exif_transpose(img) or img
        except Exception:  # noqa: BLE001 - a broken EXIF block must not lose an otherwise good page
            pass
        return normalize_mode(img)


def check_image(
    source: Source,
    *,
    name: str | None = None,
    max_pixels: int | None = None,
    formats: tuple[str, ...] = ALLOWED_FORMATS,
) -> tuple[int, int]:
    """The (width, height) `open_image` would give, after the same checks and a full decode, at the
    cost of the decoded pixels alone (no rotated or RGB copy): how uploads are accepted."""
    with _decoded(source, name, max_pixels, formats) as (img, _name):
        width, height = img.size
        try:
            orientation = img.getexif().get(ORIENTATION, 1)
        except Exception:  # noqa: BLE001 - as in open_image: a broken EXIF block is ignored
            orientation = 1
        return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def to_gray(img: Image.Image) -> np.ndarray:
    """The image as a uint8 grey array (ITU-R 601 luma, as Pillow's "L")."""
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img, dtype=np.uint8)


def gray_percentiles(gray: np.ndarray, qs: tuple[float, ...]) -> tuple[int, ...]:
    """Percentiles of a uint8 array from its histogram (much faster than np.percentile at page size)."""
    cdf = np.cumsum(cv2.calcHist([np.ascontiguousarray(gray)], [0], None, [256], [0, 256]).ravel())
    total = cdf[-1]
    return tuple(int(np.searchsorted(cdf, q / 100.0 * total)) for q in qs)
