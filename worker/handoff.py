"""The `.npz` files passed between workers: a page's cut panels, and its colours handed to
finishing. Raw uncompressed arrays (`s0`, ... sketches; `c0`, ... colours; `r0`, ... a hand-off's
style references, once per painting) with a readable JSON description under `meta` (geometry,
finishes; for a hand-off also render, attempt, seed, timings, and which reference each panel has)."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
from PIL import Image

from panelpaint import pages
from panelpaint.panels import Panel
from panelpaint.reference_match import Reference
from panelpaint.store.storage import Storage


@dataclass(frozen=True)
class Geometry:
    """Where a page's panels are and how each is finished: what travels with its sketches or colours."""

    size: tuple[int, int]
    direction: str
    panels: list[Panel]
    boxes: list[tuple[int, int, int, int]]
    finishes: list[pages.PanelFinish] = field(default_factory=list)

    @classmethod
    def of(cls, prepared: pages.PreparedPage) -> "Geometry":
        return cls(tuple(prepared.size), prepared.direction, list(prepared.panels), list(prepared.boxes),
                   list(prepared.finishes))

    def to_json(self) -> dict[str, Any]:
        return {"size": list(self.size), "direction": self.direction, "panels": [p.to_dict() for p in self.panels],
                "boxes": [list(b) for b in self.boxes], "finishes": [f.to_json() for f in self.finishes]}

    @classmethod
    def from_json(cls, meta: dict[str, Any]) -> "Geometry":
        panels = [Panel.from_dict(p) for p in meta["panels"]]
        # Files written before finishes travelled: every panel finished the default way.
        finishes = [pages.PanelFinish.from_json(f) for f in meta.get("finishes") or [{} for _ in panels]]
        return cls(tuple(meta["size"]), meta["direction"], panels, [tuple(b) for b in meta["boxes"]], finishes)


@dataclass(frozen=True)
class PanelMerge:
    """A panel re-render's way into the page's finished result: the render it goes into, the
    panel, and the page's panels (the merged result's panel list)."""

    based_on: int
    panel: Panel
    page_panels: list[Panel]

    def onto(self, render_id: int) -> "PanelMerge":
        return replace(self, based_on=render_id)

    def to_json(self) -> dict[str, Any]:
        return {"based_on": self.based_on, "panel": self.panel.to_dict(),
                "page_panels": [p.to_dict() for p in self.page_panels]}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> "PanelMerge | None":
        if not d:
            return None
        return cls(d["based_on"], Panel.from_dict(d["panel"]), [Panel.from_dict(p) for p in d["page_panels"]])


@dataclass(frozen=True)
class Handoff:
    """What finishing needs beside the colours (the render id and attempt make every file its own)."""

    render_id: int
    attempt: int
    source_key: str
    name: str
    geometry: Geometry
    seed: int | None
    model_version: str
    timings: dict[str, float]
    degraded: str | None = None
    merge: PanelMerge | None = None

    def to_json(self) -> dict[str, Any]:
        return {"render_id": self.render_id, "attempt": self.attempt, "source_key": self.source_key,
                "name": self.name, **self.geometry.to_json(), "seed": self.seed, "model_version": self.model_version,
                "timings": dict(self.timings), "degraded": self.degraded,
                "merge": self.merge.to_json() if self.merge is not None else {}}

    @classmethod
    def from_json(cls, meta: dict[str, Any]) -> "Handoff":
        return cls(meta["render_id"], meta["attempt"], meta["source_key"], meta["name"], Geometry.from_json(meta),
                   meta.get("seed"), meta["model_version"], dict(meta["timings"]), meta.get("degraded"),
                   PanelMerge.from_json(meta.get("merge")))


def _put(storage: Storage, meta: dict, arrays: list[np.ndarray], prefix: str,
         extra: dict[str, np.ndarray] | None = None) -> str:
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             **{f"{prefix}{i}": a for i, a in enumerate(arrays)}, **(extra or {}))
    return storage.put_bytes(buf.getvalue(), ".npz")


def _get(storage: Storage, key: str, prefix: str) -> tuple[dict, list[np.ndarray], dict[str, np.ndarray]]:
    """The meta, the per-panel arrays under `prefix`, and every other array by name."""
    with storage.open(key) as f, np.load(f, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes())
        mine = [f"{prefix}{i}" for i in range(len(meta["panels"]))]
        return meta, [z[k] for k in mine], {k: z[k] for k in z.files if k != "meta" and k not in mine}


def save_cut(storage: Storage, prepared: pages.PreparedPage) -> str:
    """Store a page's cut panels (sketches at work size) and their geometry; returns the key."""
    return _put(storage, Geometry.of(prepared).to_json(), [np.asarray(sk) for sk in prepared.sketches], "s")


def load_cut(storage: Storage, key: str) -> pages.PreparedPage:
    """A cut as the page pipeline takes it (styles and hints still to be assigned)."""
    meta, sketches, _ = _get(storage, key, "s")
    g = Geometry.from_json(meta)
    return pages.PreparedPage(g.size, g.panels, g.boxes, [Image.fromarray(a, "L") for a in sketches], [], [],
                              g.direction)


def save_handoff(storage: Storage, handoff: Handoff, colours: list[Image.Image],
                 references: Sequence[Reference | None] | None = None) -> str:
    """Store a page's panel colours (RGB at work size) with what finishing needs, and each panel's
    style reference (`PreparedPage.references`, stored once per painting) for reference matching;
    returns the key."""
    refs = list(references) if references is not None else [None] * len(colours)
    if len(refs) != len(colours):
        raise ValueError(f"{len(colours)} panel colours but {len(refs)} references")
    distinct: list[Reference] = []
    index: list[int | None] = []
    for ref in refs:
        if ref is None:
            index.append(None)
            continue
        at = next((j for j, d in enumerate(distinct) if d is ref), None)
        if at is None:
            at = len(distinct)
            distinct.append(ref)
        index.append(at)
    return _put(storage, {**handoff.to_json(), "references": index},
                [np.asarray(c.convert("RGB")) for c in colours], "c",
                {f"r{j}": ref.rgb for j, ref in enumerate(distinct)})


def load_handoff(storage: Storage, key: str) -> tuple[Handoff, list[np.ndarray], list[Reference | None]]:
    """What `save_handoff` stored: the hand-off, the colours and each panel's reference (None for
    every panel of a file written before references travelled); raises `NotFound` when the file is gone."""
    meta, colours, extra = _get(storage, key, "c")
    distinct = {j: Reference(extra[f"r{j}"]) for j in set(meta.get("references") or []) if j is not None}
    refs = [distinct.get(j) if j is not None else None for j in meta.get("references") or [None] * len(colours)]
    return Handoff.from_json(meta), colours, refs
