"""`panelpaint render` end to end with a fake colorizer: folders, CBZ/ZIP outputs, bad pages failing alone."""
import json
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.panelpaint.comic_pages import FakeColorizer, draw_page, grid_boxes
from cli.main import main
from panelpaint.weights import DEFAULT_WEIGHTS
from cli import render as render_cmd
from cli.render import render_pages


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    small = lambda rows, seed: draw_page(grid_boxes(rows), seed=seed).resize((300, 425))  # noqa: E731
    small([2, 2], 1).save(d / "page1.png")
    small([1, 2], 2).save(d / "page2.jpg", quality=95)
    (d / "page3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)  # corrupt
    with zipfile.ZipFile(d / "book.cbz", "w") as zf:
        for name, rows in (("p10.png", [2]), ("p2.png", [1, 1])):
            img = small(rows, 3)
            path = d / name
            img.save(path)
            zf.write(path, name)
            path.unlink()
        zf.writestr("../escape.png", b"x")
        zf.writestr("Thumbs.db", b"x")
    Image.new("RGB", (16, 16), (30, 160, 200)).save(d / "style.png")
    return d


@pytest.fixture
def fake(monkeypatch):
    made = []

    def factory(settings):
        made.append((settings.weights, settings))
        return FakeColorizer()

    monkeypatch.setattr(render_cmd, "load_colorizer", factory)
    return made


def run(args):
    return CliRunner().invoke(main, ["render", *map(str, args)])


def test_render_folder_with_one_corrupt_page(inputs, fake, tmp_path):
    out = tmp_path / "out"
    res = run([inputs / "page1.png", inputs / "page2.jpg", inputs / "page3.png", inputs / "book.cbz",
               "--style", inputs / "style.png", "--format", "png", "--format", "psd", "-o", out])
    assert res.exit_code == 1, res.output
    assert "4 of 6 page(s) coloured" in res.output
    assert "2 page(s) failed" in res.output
    assert "page3.png: corrupt or truncated" in res.output and "page3.png: page3.png" not in res.output
    assert "book.cbz:../escape.png: refused: path traversal" in res.output
    names = sorted(p.name for p in out.iterdir())
    stems = ["0001_page1", "0002_page2", "0005_book_p2", "0006_book_p10"]  # natural order inside the CBZ
    for stem in stems:
        for suffix in (".png", ".flats.png", ".lines.png", ".psd", ".panels.json", ".preview.jpg", ".thumb.jpg"):
            assert stem + suffix in names
    assert not any(n.startswith("0003") for n in names)
    assert len(json.loads((out / "0001_page1.panels.json").read_text())["panels"]) == 4
    assert len(json.loads((out / "0006_book_p10.panels.json").read_text())["panels"]) == 2
    assert fake and fake[0][0] == DEFAULT_WEIGHTS


def test_rtl_and_cbz_output(inputs, fake, tmp_path):
    out = tmp_path / "out"
    res = run([inputs / "page1.png", "--style", inputs / "style.png", "--rtl", "--format", "cbz", "-o", out])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["page1.cbz"]
    with zipfile.ZipFile(out / "page1.cbz") as zf:
        assert zf.namelist() == ["0001_page1.png", "ComicInfo.xml"]
        info = ET.fromstring(zf.read("ComicInfo.xml"))
        assert info.findtext("Manga") == "YesAndRightToLeft" and info.findtext("PageCount") == "1"
        assert info.find("Pages/Page").get("ImageSize") == str(zf.getinfo("0001_page1.png").file_size)
    res = run([inputs / "page1.png", inputs / "page2.jpg", "--style", inputs / "style.png", "--format", "zip",
               "-o", tmp_path / "zipped"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "zipped").iterdir()) == ["pages.zip"]  # staging folder gone
    with zipfile.ZipFile(tmp_path / "zipped" / "pages.zip") as zf:
        assert {"0001_page1.png", "0002_page2.flats.png", "0002_page2.panels.json"} <= set(zf.namelist())


def test_zip_output_holds_every_file(inputs, fake, tmp_path):
    out = tmp_path / "out"
    summary = render_pages([inputs / "page1.png", inputs / "page2.jpg"], inputs / "style.png", out, FakeColorizer(),
                           settings=_settings(tmp_path), formats=("zip", "ora"), progress=False, echo=lambda m: None)
    assert not summary.failures and summary.pages == 2
    with zipfile.ZipFile(out / "pages.zip") as zf:
        names = zf.namelist()
    assert "0001_page1.ora" in names and "0002_page2.png" in names and "0002_page2.panels.json" in names
    assert (out / "0001_page1.ora").exists()  # ora asked for as files too
    assert summary.timings["model"] > 0 and summary.timings["decode"] > 0


def test_rtl_changes_the_stored_order(inputs, tmp_path):
    s = _settings(tmp_path)
    ltr = render_pages([inputs / "page1.png"], inputs / "style.png", tmp_path / "a", FakeColorizer(), settings=s,
                       progress=False, echo=lambda m: None)
    rtl = render_pages([inputs / "page1.png"], inputs / "style.png", tmp_path / "b", FakeColorizer(), settings=s,
                       direction="rtl", progress=False, echo=lambda m: None)
    assert not ltr.failures and not rtl.failures
    a = json.loads((tmp_path / "a" / "0001_page1.panels.json").read_text())["panels"]
    b = json.loads((tmp_path / "b" / "0001_page1.panels.json").read_text())["panels"]
    assert a[0]["bbox"] == b[1]["bbox"] and a[1]["bbox"] == b[0]["bbox"]


def test_hostile_archive_fails_alone(inputs, tmp_path):
    bomb = inputs / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.png", b"\0" * 3_000_000)
    s = _settings(tmp_path, max_archive_bytes=1_000_000)
    messages = []
    summary = render_pages([bomb, inputs / "page1.png"], inputs / "style.png", tmp_path / "o", FakeColorizer(),
                           settings=s, progress=False, echo=messages.append)
    assert [f.name for f in summary.failures] == ["bomb.zip"]
    assert "zip bomb" in summary.failures[0].message and "zip bomb" in messages[0]
    assert (tmp_path / "o" / "0002_page1.png").exists()


def test_bad_style_and_missing_weights_are_clean_errors(inputs, tmp_path, monkeypatch):
    (inputs / "bad_style.png").write_bytes(b"nope")
    monkeypatch.setattr(render_cmd, "load_colorizer", lambda s: FakeColorizer())
    res = run([inputs / "page1.png", "--style", inputs / "bad_style.png", "-o", tmp_path / "o"])
    assert res.exit_code == 1 and "style reference: bad_style.png: not a recognised image" in res.output
    assert "Traceback" not in res.output


def test_missing_model_or_weights_is_a_click_error(inputs, tmp_path, monkeypatch):
    import click

    def missing(settings):
        raise click.ClickException("no trained weights found (x); pass --weights FILE or set PANELPAINT_WEIGHTS")

    monkeypatch.setattr(render_cmd, "load_colorizer", missing)
    res = run([inputs / "page1.png", "--style", inputs / "style.png", "-o", tmp_path / "o"])
    assert res.exit_code == 1 and "no trained weights found" in res.output


def test_load_colorizer_turns_missing_weights_into_click_exception(tmp_path, monkeypatch):
    import sys
    import types

    import click

    class WeightsNotFoundError(FileNotFoundError):
        pass

    class Colorizer:
        @classmethod
        def from_file(cls, path, device="auto", compile=False):
            raise WeightsNotFoundError(f"{path}: no such weights")

    module = types.ModuleType("models.colorizer")
    module.Colorizer = Colorizer
    monkeypatch.setitem(sys.modules, "models.colorizer", module)
    with pytest.raises(click.ClickException, match="w.safetensors: no such weights; pass --weights FILE"):
        render_cmd.load_colorizer(_settings(tmp_path).model_copy(update={"weights": tmp_path / "w.safetensors"}))


def test_composites_keep_black_lines(inputs, tmp_path):
    render_pages([inputs / "page1.png"], inputs / "style.png", tmp_path / "o", FakeColorizer(),
                 settings=_settings(tmp_path), progress=False, echo=lambda m: None)
    lines = np.asarray(Image.open(inputs / "page1.png").convert("L"))
    comp = np.asarray(Image.open(tmp_path / "o" / "0001_page1.png"))
    assert (comp[lines == 0] == 0).all()


def _settings(tmp_path, **overrides):
    from panelpaint.settings import load_settings

    return load_settings(var_dir=tmp_path / "var", **overrides)


def test_render_with_real_tiny_weights_end_to_end(inputs, tmp_path):
    pytest.importorskip("torch")
    from tests.testkit import random_weights

    weights = random_weights(tmp_path / "tiny.safetensors", version="tiny-test")
    out = tmp_path / "out"
    res = run([inputs / "page1.png", "--style", inputs / "style.png", "--weights", weights, "--size", "64",
               "--format", "ora", "-o", out])
    assert res.exit_code == 0, res.output
    assert "1 of 1 page(s) coloured" in res.output
    meta = json.loads((out / "0001_page1.panels.json").read_text())
    assert meta["model_version"] == "tiny-test" and len(meta["panels"]) == 4
    with zipfile.ZipFile(out / "0001_page1.ora") as zf:
        assert zf.namelist()[0] == "mimetype"


def test_page_modules_never_import_torch_or_models():
    import subprocess
    import sys

    code = ("import sys, panelpaint.pages, panelpaint.archives, cli.render; "
            "bad = [m for m in ('torch', 'models') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
