"""Page outputs: PSD and OpenRaster layers with multiply, PNG layers, panel JSON, previews."""
import io
import json
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.panelpaint.comic_pages import FakeColorizer, draw_page, grid_boxes
from panelpaint.pages import render_page, write_outputs


@pytest.fixture(scope="module")
def result():
    page = draw_page(grid_boxes([2, 2]), seed=4).resize((300, 425))
    return render_page(page, Image.new("RGB", (16, 16), (180, 90, 40)), FakeColorizer(), work_size=128)


def test_all_outputs_written_with_encode_timings(result, tmp_path):
    paths = write_outputs(result, tmp_path, stem="p1")
    assert set(paths) == {"composite", "flats", "shading", "lines", "psd", "ora", "json", "preview", "thumbnail"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    assert paths["composite"].name == "p1.png"
    for key in ("encode_png_composite", "encode_png_flats", "encode_psd", "encode_ora", "encode_preview"):
        assert result.timings[key] >= 0
    assert np.array_equal(np.asarray(Image.open(paths["composite"])), np.asarray(result.composite))
    assert np.array_equal(np.asarray(Image.open(paths["flats"])), np.asarray(result.flats))


def test_line_layer_is_black_on_transparency(result, tmp_path):
    lines = Image.open(write_outputs(result, tmp_path, {"png"})["lines"])
    assert lines.mode == "LA"
    arr = np.asarray(lines)
    assert (arr[..., 0] == 0).all()
    assert np.array_equal(arr[..., 1], 255 - np.asarray(result.lines))


def test_psd_groups_each_panel_under_multiplied_lines(result, tmp_path):
    from psd_tools import PSDImage
    from psd_tools.constants import BlendMode

    psd = PSDImage.open(write_outputs(result, tmp_path, {"psd"})["psd"])
    assert psd.size == result.size
    top = list(psd)
    assert [layer.name for layer in top] == ["Gutters", "Panel 1", "Panel 2", "Panel 3", "Panel 4", "Lines"]
    assert [layer.kind for layer in top] == ["pixel", "group", "group", "group", "group", "pixel"]
    assert top[-1].blend_mode == BlendMode.MULTIPLY
    assert np.array_equal(np.asarray(top[-1].topil().convert("L")), np.asarray(result.lines))
    flats, shading = np.asarray(result.flats), np.asarray(result.shading)
    for group, panel in zip(top[1:5], result.panels):
        x0, y0, x1, y1 = panel.box()
        layers = list(group)
        assert [layer.name for layer in layers] == ["Flats", "Shading"]
        assert [layer.blend_mode for layer in layers] == [BlendMode.NORMAL, BlendMode.MULTIPLY]
        # By default the shading is a hidden layer: the picture is the flats under the lines.
        assert [layer.visible for layer in layers] == [True, False] and not result.shading_shown
        assert all(layer.bbox == (x0, y0, x1, y1) and layer.has_mask() for layer in layers)
        assert np.array_equal(np.asarray(layers[0].topil().convert("RGB")), flats[y0:y1, x0:x1])
        assert np.array_equal(np.asarray(layers[1].topil().convert("L")), shading[y0:y1, x0:x1])
        mask = np.asarray(layers[0].mask.topil().convert("L"))
        assert np.array_equal(mask > 0, panel.mask((x1 - x0, y1 - y0), (x0, y0)) > 0)
    # The stored merged image is our composite, and re-rendering the layers gives the same picture.
    assert np.array_equal(np.asarray(psd.topil().convert("RGB")), np.asarray(result.composite))
    rendered = np.asarray(psd.composite(force=True).convert("RGB"), int)
    assert np.abs(rendered - np.asarray(result.composite, int)).max() <= 2


def test_psd_without_panels_has_page_layers(result):
    from psd_tools import PSDImage

    from panelpaint.export import psd_bytes

    psd = PSDImage.open(io.BytesIO(psd_bytes(result.composite, result.flats, result.lines, result.shading, False)))
    assert [(layer.name, layer.visible) for layer in psd] == [("Flats", True), ("Shading", False), ("Lines", True)]
    assert np.array_equal(np.asarray(psd[0].topil().convert("RGB")), np.asarray(result.flats))


def test_ora_is_a_valid_openraster(result, tmp_path):
    path = write_outputs(result, tmp_path, {"ora"})["ora"]
    with zipfile.ZipFile(path) as zf:
        first = zf.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert zf.read("mimetype") == b"image/openraster"
        assert path.read_bytes()[30:38] == b"mimetype"  # readers sniff it at this offset
        root = ET.fromstring(zf.read("stack.xml"))
        assert (int(root.get("w")), int(root.get("h"))) == result.size
        layers = root.find("stack").findall("layer")
        assert [(l.get("name"), l.get("composite-op"), l.get("visibility")) for l in layers] == [
            ("Lines", "svg:multiply", "visible"), ("Shading", "svg:multiply", "hidden"),
            ("Flats", "svg:src-over", "visible")]
        for layer in layers:
            assert Image.open(io.BytesIO(zf.read(layer.get("src")))).size == result.size
        merged = Image.open(io.BytesIO(zf.read("mergedimage.png")))
        assert np.array_equal(np.asarray(merged.convert("RGB")), np.asarray(result.composite))
        thumb = Image.open(io.BytesIO(zf.read("Thumbnails/thumbnail.png")))
        assert max(thumb.size) <= 256


def test_panel_json_and_previews(result, tmp_path):
    paths = write_outputs(result, tmp_path, {"json", "preview"})
    data = json.loads(paths["json"].read_text())
    assert (data["width"], data["height"]) == result.size and data["direction"] == "ltr"
    assert data["model_version"] == "fake-1"
    assert [p["order"] for p in data["panels"]] == [0, 1, 2, 3]
    assert data["panels"][0]["bbox"] == list(result.panels[0].bbox)
    preview = Image.open(paths["preview"])
    assert preview.format == "JPEG" and preview.size == result.size  # small pages are not enlarged
    assert max(Image.open(paths["thumbnail"]).size) == 256


def test_unknown_format_is_refused(result, tmp_path):
    with pytest.raises(ValueError, match="unknown output format.*gif"):
        write_outputs(result, tmp_path, {"png", "gif"})


def test_encode_outputs_in_memory_match_the_files(result, tmp_path):
    from panelpaint.pages import encode_outputs

    encoded = encode_outputs(result, {"png", "json", "preview"}, stem="p9")
    paths = write_outputs(result, tmp_path, {"png", "json", "preview"}, stem="p9")
    assert set(encoded) == set(paths)
    for kind, (name, data) in encoded.items():
        assert paths[kind].name == name
        assert paths[kind].read_bytes() == data


def test_shown_shading_is_in_the_composite_and_the_layered_files(tmp_path):
    from psd_tools import PSDImage

    from panelpaint.composite import multiply
    from panelpaint.pages import FinishOptions, Shading

    page = draw_page(grid_boxes([2, 2]), seed=4).resize((300, 425))
    shaded = render_page(page, Image.new("RGB", (16, 16), (180, 90, 40)), FakeColorizer(), work_size=128,
                         options=FinishOptions(shading=Shading.ON))
    assert shaded.shading_shown and (np.asarray(shaded.shading) < 255).any()
    flats, shade, lines = (np.asarray(x) for x in (shaded.flats, shaded.shading, shaded.lines))
    assert np.array_equal(np.asarray(shaded.composite), multiply(multiply(flats, shade), lines))
    psd = PSDImage.open(write_outputs(shaded, tmp_path, {"psd"})["psd"])
    assert all(layer.visible for layer in psd.descendants())
    rendered = np.asarray(psd.composite(force=True).convert("RGB"), int)
    assert np.abs(rendered - np.asarray(shaded.composite, int)).max() <= 2
