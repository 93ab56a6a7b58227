"""Weights files and the Colorizer pipeline: exact round trips, any image mode and shape, the CLI end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw
from safetensors import safe_open
from safetensors.torch import save_file

from models.colorizer import (MAX_SIZE, MIN_SIZE, Colorizer, WeightsNotFoundError, default_dtype, hints_to_arrays,
                              pick_device, sketch_to_array, working_size)
from models.weights_io import load_weights, save_weights
from tests.testkit import tiny_nets

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    gen, enc = tiny_nets()
    return save_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors", gen, enc, version="tiny-test-1")


@pytest.fixture(scope="module")
def colorizer(weights_file):
    return Colorizer.from_file(weights_file, device="cpu")


def sketch_image(w=60, h=40) -> Image.Image:
    img = Image.new("L", (w, h), 245)
    ImageDraw.Draw(img).ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], outline=0, width=2)
    return img


def style_image() -> Image.Image:
    img = Image.new("RGB", (50, 30), (200, 40, 40))
    ImageDraw.Draw(img).rectangle([0, 0, 25, 30], fill=(40, 90, 220))
    return img


# ----------------------------------------------------------------------------- weights files

def test_round_trip_reproduces_outputs_exactly(tmp_path):
    gen, enc = tiny_nets(3)
    path = save_weights(tmp_path / "w.safetensors", gen, enc, version="v7", extra_meta={"steps": 12})
    gen2, enc2, meta = load_weights(path)
    assert meta["model_version"] == "v7" and meta["format"] == "panelpaint" and meta["steps"] == "12"
    assert meta["config"]["style_encoder"]["kind"] == "painting"
    sk, img = torch.rand(2, 1, 8, 12), torch.rand(2, 3, 20, 20)
    hints = torch.zeros(2, 4, 8, 12)
    with torch.no_grad():
        for a, b in ((enc, enc2),):
            assert torch.equal(a(img), b(img))
        s = enc(img)
        assert torch.equal(gen(sk, s, hints), gen2(sk, s, hints))
        out1, g1, g2 = gen(sk, s, return_guides=True)
        out2, h1, h2 = gen2(sk, s, return_guides=True)
    assert torch.equal(g1, h1) and torch.equal(g2, h2)
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    assert all(k.startswith(("generator.", "style_encoder.")) for k in keys)
    assert any(k.startswith("generator.guide1.") for k in keys)


def test_fp16_inference_only_file(tmp_path):
    gen, enc = tiny_nets()
    full = save_weights(tmp_path / "full.safetensors", gen, enc, version="a")
    small = save_weights(tmp_path / "small.safetensors", gen, enc, version="a", dtype=torch.float16,
                         inference_only=True)
    assert small.stat().st_size < full.stat().st_size * 0.55
    with safe_open(str(small), "pt") as f:
        assert not any(".guide" in k for k in f.keys())
        assert f.get_tensor("generator.stem.weight").dtype == torch.float16
    gen2, _, meta = load_weights(small)
    assert meta["inference_only"] == "true"
    assert gen2.stem.weight.dtype == torch.float32
    assert torch.allclose(gen2.stem.weight, gen.stem.weight, atol=1e-3)


def test_load_rejects_foreign_or_damaged_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="not a safetensors"):
        load_weights(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a panelpaint weights file"):
        load_weights(tmp_path / "other.safetensors")
    gen, enc = tiny_nets()
    path = save_weights(tmp_path / "w.safetensors", gen, enc, version="a")
    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    del tensors["generator.mid.0.conv1.weight"]
    save_file(tensors, str(tmp_path / "cut.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match=r"missing \['mid.0.conv1.weight'\]"):
        load_weights(tmp_path / "cut.safetensors")
    with pytest.raises(ValueError, match="reserved"):
        save_weights(tmp_path / "x.safetensors", gen, enc, version="a", extra_meta={"config": "{}"})


def test_no_pickle_in_weights(tmp_path):
    gen, enc = tiny_nets()
    path = save_weights(tmp_path / "w.safetensors", gen, enc, version="a")
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_len])
    assert header["__metadata__"]["format"] == "panelpaint"


# ----------------------------------------------------------------------------- Colorizer

def test_from_file_without_weights(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="panelpaint train"):
        Colorizer.from_file(tmp_path / "missing.safetensors")
    assert issubclass(WeightsNotFoundError, FileNotFoundError)


def test_device_and_dtype_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto").type in ("cpu", "mps")
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")
    assert default_dtype(torch.device("cuda")) == torch.bfloat16
    assert default_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"


def test_compile_falls_back_to_eager_when_the_compiler_fails(weights_file, monkeypatch):
    def broken_compile(module, **kw):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    col = Colorizer.from_file(weights_file, device="cpu", compile=True)
    assert col._forward is not col.generator
    ref = Colorizer.from_file(weights_file, device="cpu")
    out = col.colorize(sketch_image(), style_image(), size=32)
    assert col._forward is col.generator
    assert np.array_equal(np.asarray(out), np.asarray(ref.colorize(sketch_image(), style_image(), size=32)))


def test_large_sketch_is_cleaned_at_reduced_size(colorizer, monkeypatch):
    import models.colorizer as mod

    seen = []
    real = mod.normalize_lineart
    monkeypatch.setattr(mod, "normalize_lineart", lambda a: seen.append(a.shape) or real(a))
    out = colorizer.colorize(sketch_image(2400, 1600), style_image(), size=32)
    assert out.size == (2400, 1600)
    assert seen == [(43, 64)]  # twice the working size, not 2400x1600


def test_colorize_keeps_size_and_aspect(colorizer):
    assert colorizer.model_version == "tiny-test-1"
    assert colorizer.device.type == "cpu" and colorizer.dtype == torch.float32
    for w, h in [(60, 40), (40, 60), (33, 17), (1, 1), (4000, 20), (20, 500)]:
        out = colorizer.colorize(sketch_image(w, h) if min(w, h) > 4 else Image.new("L", (w, h), 0),
                                 style_image(), size=64)
        assert out.mode == "RGB" and out.size == (w, h)


def test_padding_not_stretching():
    (w, h), (pw, ph) = working_size((1000, 250), 512, 16)
    assert (w, h) == (512, 128) and (pw, ph) == (512, 128)
    (w, h), (pw, ph) = working_size((4000, 20), 512, 16)
    assert (w, h) == (512, 3) and (pw, ph) == (512, 16)
    with pytest.raises(ValueError, match="too elongated"):
        working_size((10000, 1), 512, 16)


def test_deterministic_seeds_give_variants_and_batch_equals_single(colorizer):
    sk, st = sketch_image(), style_image()
    a = colorizer.colorize(sk, st, size=64)
    assert np.array_equal(np.asarray(a), np.asarray(colorizer.colorize(sk, st, size=64)))
    one, again = colorizer.colorize(sk, st, size=64, seed=1), colorizer.colorize(sk, st, size=64, seed=1)
    two = colorizer.colorize(sk, st, size=64, seed=2)
    assert np.array_equal(np.asarray(one), np.asarray(again)) and colorizer.last_seed == 2
    assert not np.array_equal(np.asarray(one), np.asarray(two))
    assert not np.array_equal(np.asarray(one), np.asarray(a))
    sketches = [sketch_image(), sketch_image(30, 90), sketch_image(60, 40)]
    outs = colorizer.colorize_batch(sketches, st, size=64)
    assert [o.size for o in outs] == [(60, 40), (30, 90), (60, 40)]
    assert np.abs(np.asarray(outs[0], np.int16) - np.asarray(a, np.int16)).max() <= 1
    assert colorizer.colorize_batch([], [], size=64) == []


def test_batch_groups_by_padded_size_and_caches_styles(weights_file, monkeypatch):
    col = Colorizer.from_file(weights_file, device="cpu", max_batch=2)
    calls, enc_calls = [], []
    real_fwd, real_enc = col._forward, col.style_encoder.forward
    monkeypatch.setattr(col, "_forward", lambda sk, st, hi: calls.append(tuple(sk.shape)) or real_fwd(sk, st, hi))
    monkeypatch.setattr(col.style_encoder, "forward", lambda x: enc_calls.append(1) or real_enc(x))
    st = style_image()
    sketches = [sketch_image(60, 40)] * 3 + [sketch_image(40, 60)]
    col.colorize_batch(sketches, [st] * 4, size=64)
    assert sorted(calls) == sorted([(2, 1, 44, 64), (1, 1, 44, 64), (1, 1, 64, 44)])  # tiny stride 4
    assert len(enc_calls) == 1


def test_hints_change_the_result_and_are_checked(colorizer):
    sk, st = sketch_image(), style_image()
    hints = Image.new("RGBA", sk.size, (0, 0, 0, 0))
    ImageDraw.Draw(hints).ellipse([25, 15, 35, 25], fill=(0, 255, 0, 255))
    plain = np.asarray(colorizer.colorize(sk, st, size=64), np.int16)
    hinted = np.asarray(colorizer.colorize(sk, st, hints, size=64), np.int16)
    assert np.abs(plain - hinted).max() > 0
    with pytest.raises(ValueError, match="size of the sketch"):
        colorizer.colorize(sk, st, Image.new("RGBA", (10, 10)), size=64)


def test_hint_dots_survive_downscaling():
    hints = Image.new("RGBA", (800, 800), (0, 0, 0, 0))
    hints.putpixel((400, 400), (255, 0, 0, 255))
    a = hints_to_arrays(hints, (800, 800), (64, 64))
    assert a[3].sum() == 1
    y, x = np.argwhere(a[3] == 1)[0]
    assert a[:3, y, x].tolist() == [1.0, -1.0, -1.0]
    assert a[:3].sum() == -1.0  # zeros away from the dot


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_sketch_modes(mode, colorizer):
    base = sketch_image(40, 24)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base).astype("<u2") * 257)
        assert img.mode == "I;16"
    elif mode == "I":
        img = Image.fromarray(np.asarray(base, np.int32) * 257, "I")
    elif mode == "F":
        img = Image.fromarray(np.asarray(base, np.float32) / 255.0, "F")
    else:
        img = base.convert(mode)
    a = sketch_to_array(img)
    assert a.shape == (24, 40) and a.dtype == np.float32
    assert abs(float(a[0, 0]) - 245 / 255) < 0.02 or mode in ("1", "P", "PA")
    assert a.min() < 0.1  # the ink is dark in every mode
    assert colorizer.colorize(img, img, size=32).size == (40, 24)


def test_transparent_sketch_is_paper_where_transparent():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.putpixel((5, 5), (0, 0, 0, 255))
    a = sketch_to_array(img)
    assert a[0, 0] == 1.0 and a[5, 5] == 0.0


def test_the_network_takes_every_working_size_the_service_allows(colorizer):
    from panelpaint.limits import WORK_SIZE_MAX, WORK_SIZE_MIN

    assert MIN_SIZE <= WORK_SIZE_MIN and WORK_SIZE_MAX <= MAX_SIZE
    assert colorizer.colorize(sketch_image(), style_image(), size=WORK_SIZE_MIN).size == (60, 40)


def test_bad_inputs(colorizer):
    with pytest.raises(ValueError, match="size must be"):
        colorizer.colorize(sketch_image(), style_image(), size=0)
    with pytest.raises(ValueError, match="size must be"):
        colorizer.colorize(sketch_image(), style_image(), size=10**6)
    with pytest.raises(TypeError, match="PIL image"):
        colorizer.colorize(np.zeros((4, 4)), style_image())
    with pytest.raises(ValueError, match="empty"):
        colorizer.colorize(Image.new("L", (0, 5)), style_image())
    with pytest.raises(ValueError, match="3 style images"):
        colorizer.colorize_batch([sketch_image()], [style_image()] * 3)


# ----------------------------------------------------------------------------- CLI

@pytest.fixture
def cli(monkeypatch, tmp_path):
    from cli.main import main
    from panelpaint.settings import get_settings

    monkeypatch.setenv("PANELPAINT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PANELPAINT_DEVICE", "cpu")
    monkeypatch.delenv("PANELPAINT_WEIGHTS", raising=False)
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(main, list(map(str, args)))
    get_settings.cache_clear()


def test_cli_colorize_end_to_end(cli, weights_file, tmp_path):
    sketch_image(60, 40).save(tmp_path / "sketch.png")
    style_image().save(tmp_path / "style.jpg")
    hints = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    hints.putpixel((30, 20), (255, 200, 0, 255))
    hints.save(tmp_path / "hints.png")
    out = tmp_path / "out" / "result.png"
    r = cli("colorize", tmp_path / "sketch.png", "--style", tmp_path / "style.jpg", "--hints", tmp_path / "hints.png",
            "--weights", weights_file, "--size", 64, "-o", out)
    assert r.exit_code == 0, r.output
    assert "tiny-test-1" in r.output
    with Image.open(out) as img:
        assert img.size == (60, 40) and img.mode == "RGB"


def test_cli_colorize_fails_cleanly(cli, tmp_path):
    sketch_image().save(tmp_path / "sketch.png")
    style_image().save(tmp_path / "style.png")
    r = cli("colorize", tmp_path / "sketch.png", "--style", tmp_path / "style.png",
            "--weights", tmp_path / "nope.safetensors", "-o", tmp_path / "o.png")
    assert r.exit_code != 0
    assert "no trained weights" in r.output and "Traceback" not in r.output
    (tmp_path / "broken.png").write_bytes(b"garbage")
    r = cli("colorize", tmp_path / "broken.png", "--style", tmp_path / "style.png", "-o", tmp_path / "o.png")
    assert r.exit_code != 0 and "cannot read sketch" in r.output
    assert not (tmp_path / "o.png").exists()
