"""Fetch the free training art (Debian's openclipart-png and Wesnoth portraits) and pack the training set.

    python scripts/prepare_data.py            # -> data/prepared/{train,val}/*.png and docs/DATA_CARD.md

Steps: `apt-get download` the two packages into data/debs (skipped when the .deb is already there),
`dpkg -x` them into data/extract, keep the finished colour images (alpha composited on white, cropped
to their content, enough size and colour, near-duplicates dropped), resize them so that the longer
side is `--max-side` pixels and write them as PNG into a deterministic train/val split (a hash of the
source path, so adding images never moves an old one between splits). Nothing here runs at training
or inference time; the packed folders are ordinary image folders that `panelpaint train` reads.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# (package, folder inside the package holding the images, licence, short name)
SOURCES = [
    ("openclipart-png", "usr/share/openclipart/png", "CC0-1.0 (public domain dedication)", "openclipart"),
    ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data", "GPL-2.0-or-later", "wesnoth"),
]


@dataclass
class Rules:
    """What makes a source image usable as a finished colour painting."""

    min_side: int = 128  # content box, source pixels
    min_coverage: float = 0.12  # share of the content box that is not white paper
    min_colourful: float = 0.20  # share of content pixels with chroma above `chroma`
    chroma: int = 40  # max(R,G,B) - min(R,G,B), 0..255
    min_colours: int = 6  # distinct 4-bit-per-channel colours with at least 0.5% of the content each
    max_pixels: int = 16_000_000  # posters rendered at print size: gigabytes to decode, skipped


def run(cmd: list[str], cwd: Path | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def fetch(package: str, debs: Path, extract: Path) -> tuple[str, Path]:
    """Download (once) and unpack one Debian package; return its version and .deb path."""
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        print(f"apt-get download {package}", file=sys.stderr)
        run(["apt-get", "download", package], cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise SystemExit(f"apt-get download {package} produced no .deb in {debs}")
    deb = found[-1]
    version = run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    stamp = extract / f".{package}.unpacked"
    if not stamp.exists():
        print(f"dpkg -x {deb.name}", file=sys.stderr)
        run(["dpkg", "-x", str(deb), str(extract)])
        stamp.write_text(version)
    return version, deb


def list_images(source: str, base: Path) -> list[Path]:
    if source == "wesnoth":
        # Painted character portraits only; sprites and terrain tiles are not paintings.
        return sorted(p for p in base.rglob("*.png") if "/images/portraits/" in p.as_posix())
    return sorted(base.rglob("*.png"))


def on_white(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 RGB with transparency composited on white."""
    if img.mode in ("P", "PA") and "transparency" in img.info or img.mode in ("LA", "PA", "RGBA", "La"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return np.asarray(img.convert("RGB"))


def judge(rgb: np.ndarray, rules: Rules) -> tuple[np.ndarray | None, str]:
    """Crop to content and apply the rules; returns (crop, "") or (None, reason)."""
    paper = (rgb.min(axis=2) > 245)
    ys, xs = np.nonzero(~paper)
    if len(ys) == 0:
        return None, "blank"
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if min(y1 - y0, x1 - x0) < rules.min_side:
        return None, "small"
    m = max(2, int(0.04 * max(y1 - y0, x1 - x0)))
    crop = rgb[max(0, y0 - m): y1 + m, max(0, x0 - m): x1 + m]
    content = ~(crop.min(axis=2) > 245)
    if content.mean() < rules.min_coverage:
        return None, "sparse"
    pix = crop[content].astype(np.int16)
    chroma = pix.max(axis=1) - pix.min(axis=1)
    if (chroma > rules.chroma).mean() < rules.min_colourful:
        return None, "grey"
    q = (pix >> 4).astype(np.int32)
    keys = (q[:, 0] << 8) | (q[:, 1] << 4) | q[:, 2]
    counts = np.bincount(keys, minlength=4096)
    if (counts >= 0.005 * len(keys)).sum() < rules.min_colours:
        return None, "flat"
    return crop, ""


def fingerprint(img: Image.Image) -> str:
    """A coarse 8x8 colour thumbnail: identical for re-coloured/re-sized copies of one drawing."""
    small = np.asarray(img.resize((8, 8), Image.Resampling.BOX)).astype(np.int16) >> 5
    return small.tobytes().hex()


def split_of(key: str, val_percent: float) -> str:
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 10000
    return "val" if h < val_percent * 100 else "train"


def process(args: tuple[str, str, str, int, Rules]) -> dict:
    source, path, key, max_side, rules = args
    try:
        with Image.open(path) as im:
            if im.width * im.height > rules.max_pixels:
                return {"key": key, "reject": "huge"}
            im.load()
            rgb = on_white(im)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        # Oversized posters (decompression-bomb guard) and broken files are skipped, not fatal.
        return {"key": key, "reject": "unreadable"}
    crop, reason = judge(rgb, rules)
    if crop is None:
        return {"key": key, "reject": reason}
    img = Image.fromarray(crop)
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    return {"key": key, "source": source, "image": img, "fp": fingerprint(img)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--max-side", type=int, default=256)
    ap.add_argument("--val-percent", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--card", type=Path, default=ROOT / "docs" / "DATA_CARD.md")
    ap.add_argument("--sources", nargs="+", default=[s for *_, s in SOURCES],
                    choices=[s for *_, s in SOURCES], help="which sources to use (default: all)")
    args = ap.parse_args(argv)

    debs, extract, out = args.data / "debs", args.data / "extract", args.data / "prepared"
    extract.mkdir(parents=True, exist_ok=True)
    rules = Rules()
    versions, jobs = {}, []
    sources = [row for row in SOURCES if row[3] in args.sources]
    for package, folder, _licence, source in sources:
        versions[package], _ = fetch(package, debs, extract)
        base = extract / folder
        for p in list_images(source, base):
            key = f"{source}/{p.relative_to(base).as_posix()}"
            jobs.append((source, str(p), key, args.max_side, rules))

    for split in ("train", "val"):
        (out / split).mkdir(parents=True, exist_ok=True)
        for old in (out / split).glob("*.png"):
            old.unlink()

    seen: set[str] = set()
    stats: dict[str, dict[str, int]] = {s: {} for *_, s in sources}
    manifest = []
    with concurrent.futures.ProcessPoolExecutor(args.workers) as pool:
        for i, res in enumerate(pool.map(process, jobs, chunksize=16)):
            if i % 500 == 0:
                print(f"{i}/{len(jobs)} images looked at", file=sys.stderr, flush=True)
            source = res["key"].split("/", 1)[0]
            counts = stats[source]
            counts["found"] = counts.get("found", 0) + 1
            if "reject" in res:
                counts[res["reject"]] = counts.get(res["reject"], 0) + 1
                continue
            if res["fp"] in seen:
                counts["duplicate"] = counts.get("duplicate", 0) + 1
                continue
            seen.add(res["fp"])
            split = split_of(res["key"], args.val_percent)
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", res["key"].removesuffix(".png")) + ".png"
            res["image"].save(out / split / name, optimize=False)
            counts[split] = counts.get(split, 0) + 1
            manifest.append({"file": f"{split}/{name}", "source": res["key"], "size": res["image"].size})

    (out / "manifest.json").write_text(json.dumps(
        {"versions": versions, "rules": vars(rules), "max_side": args.max_side,
         "val_percent": args.val_percent, "stats": stats, "images": manifest}, indent=1))
    write_card(args.card, versions, rules, args, stats, sources)
    print(json.dumps(stats, indent=1))


def write_card(path: Path, versions: dict, rules: Rules, args, stats: dict, sources: list) -> None:
    rows = []
    for package, folder, licence, source in sources:
        s = stats[source]
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(s.items()) if k not in ("found", "train", "val"))
        rows.append(f"| {source} | `{package}` {versions[package]} | `{folder}` | {licence} | "
                    f"{s.get('found', 0)} | {s.get('train', 0)} | {s.get('val', 0)} | {rejected} |")
    total_train = sum(s.get("train", 0) for s in stats.values())
    total_val = sum(s.get("val", 0) for s in stats.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""# Data card: the free training set of the shipped weights

Made by `python scripts/prepare_data.py` (this file is written by that script). Both sources are
Debian packages fetched with `apt-get download` and unpacked with `dpkg -x` into the git-ignored
`data/` folder; nothing is downloaded at training or inference time, and no image is committed
except the two demo samples under `samples/` (see `samples/README.md`).

| source | package and version | folder | licence | images found | train | val | rejected |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
| **total** | | | | | **{total_train}** | **{total_val}** | |

## Licences
- **openclipart** (`openclipart-png`): the package's `copyright` file dedicates every image to the
  public domain ("creative commons Public Domain Dedication"; today's openclipart.org states CC0 1.0).
  The PNG package carries no per-image metadata; most file names end with the author's name
  (e.g. `bison_leif_lodahl_01.png`).
- **Wesnoth portraits** (`wesnoth-1.16-data`, `data/**/images/portraits/`): artwork of The Battle for
  Wesnoth, released under the GNU General Public License version 2 or (at your option) any later
  version (the package's `copyright` file, "License: ... GNU General Public License version 2 or at
  your option any later version"). Weights trained on it are a derived statistical model; we treat
  them conservatively and credit the Wesnoth artists. A studio that wants weights free of any GPL
  material can run `python scripts/prepare_data.py --sources openclipart` and train on that.

## How images are chosen
Every PNG of openclipart and every Wesnoth portrait is composited on white (transparency), cropped to
its non-white content box (4% margin), and kept when:
- the content box is at least {rules.min_side} px on its shorter side (drops icons and tiny symbols);
- at least {rules.min_coverage:.0%} of the box is not white paper (drops hairline drawings);
- at least {rules.min_colourful:.0%} of the content pixels have chroma max(R,G,B)-min(R,G,B) > {rules.chroma}
  (drops black-only and grey drawings, which cannot teach colour);
- at least {rules.min_colours} distinct colours (4 bits per channel) each cover 0.5% of the content
  (drops single flat fills);
- it has at most {rules.max_pixels:,} pixels (a few posters rendered at print size would need
  gigabytes to decode);
- its 8x8 colour thumbnail differs from every image kept before (drops re-sized/re-coloured copies).

Kept images are resized (Lanczos) so that the longer side is at most {args.max_side} px, keeping
their aspect ratio, and written as PNG. The split is deterministic: an image goes to `val` when the
SHA-1 of its source path (`openclipart/...` or `wesnoth/...`) falls in the lowest {args.val_percent:g}%.
The held-out `val` split is used only for evaluation, the demo samples and the model card.

## Known biases
Clip art is flat-coloured vector art with many white backgrounds; Wesnoth portraits are painted
fantasy characters. Neither is comic pages. Expect flat, saturated colouring and a white-background
bias; fine-tune on your own finished pages (see `docs/training.md`).
""")


if __name__ == "__main__":
    main()
