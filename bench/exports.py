"""Chapter exports and the ingest colour check at A4: the PSD with a group per panel against the
page-wide layers it replaced, the CBZ's ComicInfo.xml, and `coloured_share` on a line-art page
and on a coloured one (figures: docs/benchmarks.md, "Exports and the colour check").

    python -m bench.exports                 # 3 runs each, medians
    python -m bench.exports --repeat 5

The page is coloured by the model-free FakeColorizer: encoding does not depend on the network."""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from PIL import Image

from panelpaint.colour import coloured_share
from panelpaint.comicinfo import ComicInfo, ComicPage
from panelpaint.export import psd_bytes
from panelpaint.pages import render_page
from tests.panelpaint.comic_pages import FakeColorizer, a4_page


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; python {platform.python_version()}")
    page, _ = a4_page()
    result = render_page(page, Image.new("RGB", (16, 16), (180, 90, 40)), FakeColorizer(), work_size=256)
    print(f"page {result.size[0]}x{result.size[1]}, {len(result.panels)} panels")
    grouped, data = timed(lambda: psd_bytes(result.composite, result.flats, result.lines, result.shading, False,
                                            result.panels), args.repeat)
    flat, flat_data = timed(lambda: psd_bytes(result.composite, result.flats, result.lines, result.shading, False),
                            args.repeat)
    print(f"PSD, a group per panel (Gutters, {len(result.panels)} x Flats + Shading, Lines): "
          f"{grouped:.2f} s, {len(data) / 1e6:.1f} MB")
    print(f"PSD, page-wide layers (Flats, Shading, Lines):                {flat:.2f} s, {len(flat_data) / 1e6:.1f} MB")
    book = ComicInfo("Series", "Chapter", pages=[ComicPage(4_000_000, *result.size) for _ in range(200)])
    xml_time, xml = timed(book.to_xml, args.repeat)
    print(f"ComicInfo.xml for 200 pages: {xml_time * 1000:.2f} ms, {len(xml)} bytes")
    lines = np.asarray(page.convert("RGB"))
    coloured = np.asarray(result.composite)
    t_lines, share_lines = timed(lambda: coloured_share(lines), args.repeat)
    t_col, share_col = timed(lambda: coloured_share(coloured), args.repeat)
    print(f"coloured_share, line art: {t_lines * 1000:.1f} ms (share {share_lines:.3f}); "
          f"coloured page: {t_col * 1000:.1f} ms (share {share_col:.3f})")


if __name__ == "__main__":
    main()
