"""The README's demo page is a real comic page for the panel detector: five framed panels in three rows."""
from pathlib import Path

from PIL import Image

from panelpaint.pages import detect

PAGE = Path(__file__).resolve().parents[2] / "samples" / "page.png"


def test_sample_page_has_five_panels_in_reading_order():
    page = Image.open(PAGE)
    ltr = detect(page, direction="ltr")
    assert len(ltr) == 5
    tops = [p.bbox[1] for p in sorted(ltr, key=lambda p: p.order)]
    lefts = [p.bbox[0] for p in sorted(ltr, key=lambda p: p.order)]
    assert tops[0] == tops[1] < tops[2] < tops[3] == tops[4]
    assert lefts[0] < lefts[1] and lefts[3] < lefts[4]
    wide = sorted(ltr, key=lambda p: p.order)[2]
    assert wide.bbox[2] > 0.8 * page.width  # the middle row is one wide panel

    rtl = sorted(detect(page, direction="rtl"), key=lambda p: p.order)
    assert rtl[0].bbox[0] > rtl[1].bbox[0] and rtl[3].bbox[0] > rtl[4].bbox[0]
