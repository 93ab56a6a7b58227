"""Safe image opening: an explicit format allow-list, the pixel-bomb guard as an error, normalised modes.

Every page, style reference and upload goes through `open_image`, so one bad file becomes one
`ImageError` with a readable message instead of a crash, a hang or a memory blow-up.
"""
from __future__ import annotations

import io
import warnings
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


def _read_bytes(source: Source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "image"
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return path.read_bytes(), path.name
        except OSError as exc:
            raise ImageError(f"{path.name}: cannot read file ({exc.strerror or exc})") from None
    return source.read(), getattr(source, "name", "image")


def _check_size(img: Image.Image, name: str, max_pixels: int) -> None:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: image is too large ({width}x{height} = {width * height:,} pixels, "
            f"limit {max_pixels:,}); possible decompression bomb"
        )


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


def open_image(
    source: Source,
    *,
    name: str | None = None,
    max_pixels: int | None = None,
    formats: tuple[str, ...] = ALLOWED_FORMATS,
) -> Image.Image:
    """Decode `source` (path, bytes or binary file) into a fully loaded RGB image.

    Raises `ImageError` for an unknown or disallowed format, a renamed non-image, a truncated or
    corrupt file, or more than `max_pixels` pixels (Pillow's decompression-bomb guard is kept on and
    its warning is turned into this error). EXIF orientation is applied; only the first frame of a
    multi-page TIFF or animated WebP is used.
    """
    data, default_name = _read_bytes(source)
    name = name or default_name
    limit = max_pixels or DEFAULT_MAX_PIXELS
    if not data:
        raise ImageError(f"{name}: file is empty")
    # Pillow's own guard warns above MAX_IMAGE_PIXELS (an error below) and raises at twice it.
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(formats)) as probe:
                _check_size(probe, name, limit)
                probe.verify()
            img = Image.open(io.BytesIO(data), formats=list(formats))
            _check_size(img, name, limit)
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: image is too large (limit {limit:,} pixels); possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        allowed = ", ".join(formats)
        raise ImageError(f"{name}: not a recognised image (allowed formats: {allowed})") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from None
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose an otherwise good page
        pass
    return normalize_mode(img)


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
