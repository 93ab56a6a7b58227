"""A style's colour key: extracted when it is added, edited (palette, snap, background) with
validation and an event, studio-scoped; on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from panelpaint.flats import Background
from panelpaint.limits import SWATCHES_MAX
from panelpaint.palette import Palette
from panelpaint.store import styles
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.events import list_events
from panelpaint.store.schema import StyleReference
from tests.testkit import KEY_B

KEY = [{"color": "#e03131", "share": 0.6}, {"color": "#1971c2", "share": 0.4}]


def painting(size=(1200, 800)) -> Image.Image:
    img = Image.new("RGB", size, (230, 120, 40))
    ImageDraw.Draw(img).rectangle([0, 0, size[0] // 3, size[1]], fill=(40, 90, 200))
    return img


def test_style_palette_extracts_from_a_copy_at_most_512_px():
    img = painting()
    key = styles.style_palette(img)
    assert img.size == (1200, 800)  # the caller's image is untouched
    colours = {s.hex for s in key.swatches}
    assert len(key) == 2 and sum(s.share for s in key.swatches) == pytest.approx(1.0)
    # The orange field covers two thirds: it comes first, then the blue.
    assert key.swatches[0].share == pytest.approx(2 / 3, abs=0.02)
    assert all(c.startswith("#") for c in colours)
    assert len(styles.style_palette(painting(), k=1)) == 1
    for k in (0, SWATCHES_MAX + 1, True, "8"):
        with pytest.raises(InvalidInput, match="1 to 32 colours"):
            styles.style_palette(img, k=k)


def test_a_new_style_stores_its_colour_key_with_the_defaults(store, world):
    with store.session() as s:
        style = styles.add_style_reference(s, world.a.studio, "key", [], KEY_B, 10, 10,
                                           palette=Palette.from_json(KEY))
        assert style.palette == KEY and style.snap_palette is True and style.background == Background.PAPER
        raw = styles.add_style_reference(s, world.a.studio, "json", [], KEY_B, 10, 10,
                                         palette=[{"color": "ABCDEF"}])
        assert raw.palette == [{"color": "#abcdef", "share": 0.0}]
        with pytest.raises(InvalidInput, match="palette: swatch 0: color must look like #rrggbb"):
            styles.add_style_reference(s, world.a.studio, "bad", [], KEY_B, 10, 10, palette=[{"color": "red"}])


def test_edit_the_colour_key(store, world):
    sid = world.a.style
    with store.session() as s:
        styles.update_colour_key(s, world.a.studio, sid, palette=KEY, user_id=world.a.artist)
    with store.session() as s:
        style = s.get(StyleReference, sid)
        assert style.palette == KEY and style.snap_palette is True  # only what was given changes
        styles.update_colour_key(s, world.a.studio, sid, snap_palette=False, background="coloured")
    with store.session() as s:
        style = s.get(StyleReference, sid)
        assert (style.palette, style.snap_palette, style.background) == (KEY, False, Background.COLOURED)
        events = list_events(s, world.a.studio, kind="style.updated")
        assert events[0].data == {"style_id": sid, "user_id": world.a.artist, "palette": KEY}
        assert events[1].data == {"style_id": sid, "user_id": None, "snap_palette": False, "background": "coloured"}


@pytest.mark.parametrize("change,message", [
    ({"palette": []}, "palette: a palette has 1 to 32 swatches, got 0"),
    ({"palette": [{"color": "#000000"}] * 33}, "1 to 32 swatches, got 33"),
    ({"palette": "#ff0000"}, "must be a list of swatches"),
    ({"palette": None}, "must be a list of swatches"),
    ({"palette": [{"color": "#12345"}]}, "swatch 0: color must look like #rrggbb"),
    ({"palette": [{"share": 0.5}]}, "swatch 0: must be an object with a \"color\""),
    ({"palette": [{"color": "#123456", "share": 2}]}, "swatch 0: share must be a number from 0 to 1"),
    ({"snap_palette": "yes"}, "snap_palette must be true or false"),
    ({"background": "blue"}, "background must be 'paper' or 'coloured'"),
])
def test_bad_edits_are_refused_with_a_clear_message(store, world, change, message):
    with store.session() as s, pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        styles.update_colour_key(s, world.a.studio, world.a.style, **change)
    with store.session() as s:
        assert s.get(StyleReference, world.a.style).palette is None  # nothing changed


def test_another_studios_style_cannot_be_edited(store, world):
    with store.session() as s, pytest.raises(NotFound):
        styles.update_colour_key(s, world.b.studio, world.a.style, snap_palette=False)
