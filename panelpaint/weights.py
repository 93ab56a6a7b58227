"""Where the shipped weights are, and what a weights file says about itself, read without torch.

A panelpaint weights file is safetensors; its metadata names the model version and the working
size it was calibrated at (`work_size`: the long side fed to the network that measured best on
held-out paintings). The io workers and the command line need both without loading a network.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from panelpaint.limits import WORK_SIZE_MAX, WORK_SIZE_MIN

# models/weights/ is package data of the `models` room; the core only knows where it lies.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "weights" / "default.safetensors"
# Working size for weights that do not record one (older files).
FALLBACK_WORK_SIZE = 512


class WeightsFileError(ValueError):
    """A weights file that is missing or not a panelpaint safetensors file."""


@dataclass(frozen=True)
class WeightsInfo:
    path: Path
    model_version: str
    work_size: int                      # calibrated working size (FALLBACK_WORK_SIZE when unrecorded)
    train_sizes: tuple[int, ...] = ()   # crop sizes the network was trained at


def read_info(path: str | Path) -> WeightsInfo:
    """The metadata of a weights file (cached per file version); raises `WeightsFileError`."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise WeightsFileError(f"no weights file at {path}") from None
    return _read_info(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_info(path: Path, mtime_ns: int, size: int) -> WeightsInfo:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsFileError(f"{path} is not a safetensors weights file ({exc})") from None
    if meta.get("format") != "panelpaint":
        raise WeightsFileError(f"{path} is not a panelpaint weights file")
    try:
        work = int(meta.get("work_size") or FALLBACK_WORK_SIZE)
        train = tuple(int(s) for s in json.loads(meta.get("train_sizes") or "[]"))
    except (TypeError, ValueError):
        raise WeightsFileError(f"{path}: unreadable work_size/train_sizes in its metadata") from None
    if not WORK_SIZE_MIN <= work <= WORK_SIZE_MAX:
        raise WeightsFileError(f"{path}: work_size {work} lies outside {WORK_SIZE_MIN}-{WORK_SIZE_MAX}")
    return WeightsInfo(path, meta.get("model_version", "unversioned"), work, train)
