"""Runs Kumiko (https://github.com/njean42/kumiko, AGPL-3.0), the panel extractor issue 16 compares us
with, on a page and returns its panels as ours, for `python -m bench.panels_accuracy --kumiko DIR`.

Kumiko is not a dependency and its code is never committed here: fetch it yourself into a git-ignored
folder, e.g. `git clone https://github.com/njean42/kumiko data/kumiko` (what the benchmark needs of it:
kumikolib.py and lib/*.py; its own needs: opencv-python-headless, numpy, and requests, which kumikolib
imports for URLs: `pip install -e .[bench-kumiko]`).

Kumiko's API takes an image file: `Kumiko({'rtl': ...}).parse_image(path)`, then `get_infos()[0]
['panels']` is [[x, y, w, h], ...] in its reading order. Pages in memory are written to a temporary
BMP (lossless, cheap to decode) first. Its progress prints are silenced. OpenCV 5 returns the line
segment detector's lines as (n, 4) where Kumiko indexes OpenCV 4's (n, 1, 4); Kumiko's own modules
get a view of cv2 that reshapes them (nothing else of cv2 changes)."""
from __future__ import annotations

import contextlib
import importlib
import io
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
from PIL import Image

from panelpaint.panels import Panel, rectangle


class _Lsd:
    def __init__(self, lsd):
        self._lsd = lsd

    def detect(self, image, *args, **kwargs):
        found = self._lsd.detect(image, *args, **kwargs)
        lines = found[0]
        if lines is not None and lines.ndim == 2:
            found = (lines.reshape(-1, 1, 4), *found[1:])
        return found


def _cv_for_kumiko(cv2):
    """A module that is cv2 but for createLineSegmentDetector, whose lines come shaped as OpenCV 4's."""
    view = types.ModuleType("cv2_for_kumiko")
    view.__dict__.update(cv2.__dict__)
    view.createLineSegmentDetector = lambda *a, **k: _Lsd(cv2.createLineSegmentDetector(*a, **k))
    return view


class Kumiko:
    """Kumiko loaded from `directory`; `panels(image, direction)` runs it on a page."""

    def __init__(self, directory: str | Path):
        directory = Path(directory).resolve()
        if not (directory / "kumikolib.py").is_file():
            raise SystemExit(f"no kumikolib.py in {directory}: fetch Kumiko there (see bench/kumiko_adapter.py)")
        sys.path.insert(0, str(directory))
        try:
            self._lib = importlib.import_module("kumikolib")
            page = importlib.import_module("lib.page")
        finally:
            sys.path.remove(str(directory))
        if not Path(page.__file__).resolve().is_relative_to(directory):
            raise SystemExit(f"Kumiko's lib.page came from {page.__file__}, not {directory}")
        import cv2

        view = _cv_for_kumiko(cv2)
        for name in ("kumikolib", "lib.page", "lib.panel", "lib.debug"):
            module = sys.modules.get(name)
            if module is not None and getattr(module, "cv", None) is cv2:
                module.cv = view
        self._tmp = tempfile.TemporaryDirectory(prefix="kumiko-")
        self._n = 0

    def file(self, image: Image.Image | np.ndarray) -> str:
        """Writes a page to a temporary BMP file for Kumiko; returns its path."""
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        self._n += 1
        path = str(Path(self._tmp.name) / f"page{self._n}.bmp")
        image.convert("RGB").save(path)
        return path

    def run(self, path: str, direction: str = "ltr") -> list[list[int]]:
        """Kumiko's panels [[x, y, w, h], ...] of an image file, in its reading order."""
        kumiko = self._lib.Kumiko({"rtl": direction == "rtl"})
        with contextlib.redirect_stdout(io.StringIO()):
            kumiko.parse_image(path)
        return kumiko.get_infos()[0]["panels"]

    def panels(self, image: Image.Image | np.ndarray | str, direction: str = "ltr") -> list[Panel]:
        """Kumiko's panels of a page (an image or a file), as ours: boxes with their reading order."""
        path = image if isinstance(image, str) else self.file(image)
        return [Panel(bbox=tuple(int(v) for v in box), polygon=rectangle(box), order=i)
                for i, box in enumerate(self.run(path, direction))]

    def timed(self, image: Image.Image | np.ndarray, repeat: int) -> float:
        """Median seconds of `repeat` runs on a page (after one warm-up), file decoding included."""
        path = self.file(image)
        self.run(path)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            self.run(path)
            times.append(time.perf_counter() - t)
        return float(np.median(times))
