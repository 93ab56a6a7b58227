"""Training pairs: any image file in, valid sketch / truth / augmented reference / hints out."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from generated_art import paint_folder, painting
from models.data import (PairConfig, PairDataset, augment_reference, list_images, load_rgb, make_pair,
                         random_hints, random_sketch, to_tensor)

torch.set_num_threads(1)


def test_augmented_reference_never_returns_the_truth_unchanged():
    cfg = PairConfig(size=32)
    images = {
        "painting": to_tensor(np.asarray(painting(1, 32, 32))),
        "blank white": torch.ones(3, 32, 32),
        "flat red": torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1).expand(3, 32, 32).clone(),
        "black": torch.zeros(3, 32, 32),
        # symmetric under the horizontal flip: a flip alone would leave it as it is
        "mirror": torch.cat([torch.rand(3, 32, 16), torch.rand(3, 32, 16).flip(2)], 2),
    }
    images["mirror"] = torch.cat([images["mirror"][:, :, :16], images["mirror"][:, :, :16].flip(2)], 2)
    for name, truth in images.items():
        for seed in range(60):
            ref = augment_reference(truth, np.random.default_rng(seed), cfg)
            assert ref.shape == truth.shape and ref.dtype == torch.float32
            assert 0.0 <= float(ref.min()) and float(ref.max()) <= 1.0
            assert float((ref - truth).abs().max()) > 1.5 / 255, f"{name}, seed {seed}: reference equals the truth"


def test_augmented_reference_moves_pixels_but_keeps_the_colours():
    truth = to_tensor(np.asarray(painting(3, 64, 64)))
    moved, colour_shift = [], []
    for seed in range(20):
        ref = augment_reference(truth, np.random.default_rng(seed), PairConfig(size=64))
        moved.append(float((ref - truth).abs().mean()))
        colour_shift.append(float((ref.mean((1, 2)) - truth.mean((1, 2))).abs().max()))
    assert np.mean(moved) > 0.05  # geometry really changed
    # No hue or saturation jitter: per-channel means stay close (crop and brightness only).
    assert np.median(colour_shift) < 0.12


@pytest.mark.parametrize("seed", range(25))
def test_randomised_line_extraction_gives_valid_maps(seed):
    rgb = np.asarray(painting(seed, 40, 32))
    lines = random_sketch(rgb, np.random.default_rng(seed), PairConfig())
    assert lines.shape == (32, 40) and lines.dtype == np.float32
    assert np.isfinite(lines).all() and lines.min() >= 0.0 and lines.max() <= 1.0
    assert (lines < 0.5).mean() > 0.005, "outlined shapes must give some ink"
    assert (lines > 0.5).mean() > 0.3, "most of the page is paper"


def test_line_extraction_is_randomised():
    rgb = np.asarray(painting(0, 48, 48))
    maps = [random_sketch(rgb, np.random.default_rng(s)) for s in range(8)]
    assert len({m.tobytes() for m in maps}) == len(maps)


def test_hints_are_sparse_dots_of_the_truths_colour():
    truth = to_tensor(np.asarray(painting(2, 48, 48)))
    hints = random_hints(truth, np.random.default_rng(0), PairConfig(hint_prob=1.0))
    mask = hints[3]
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and 0 < mask.mean() < 0.3
    ys, xs = torch.nonzero(mask, as_tuple=True)
    # RGB in [-1, 1] where the mask is set, near the truth's colour there; zero elsewhere.
    assert (hints[:3, ys, xs] - (truth[:, ys, xs] * 2 - 1)).abs().mean() < 0.35
    assert hints[:3][:, mask == 0].abs().max() == 0
    none = random_hints(truth, np.random.default_rng(0), PairConfig(hint_prob=0.0))
    assert none.abs().max() == 0


def test_make_pair_shapes_and_ranges():
    pair = make_pair(np.asarray(painting(5, 70, 30)), np.random.default_rng(0), PairConfig(size=32))
    assert pair["sketch"].shape == (1, 32, 32)
    assert pair["truth"].shape == pair["reference"].shape == (3, 32, 32)
    assert pair["hints"].shape == (4, 32, 32)
    for k in ("sketch", "truth", "reference"):
        assert 0 <= float(pair[k].min()) and float(pair[k].max()) <= 1


def test_dataset_reads_any_format_and_aspect(tmp_path):
    folder = tmp_path / "pages"
    paint_folder(folder, 2)
    painting(7, 90, 20).save(folder / "wide.jpg", quality=80)
    painting(8, 20, 60).convert("RGBA").save(folder / "tall.webp")
    rgba = painting(9).convert("RGBA")
    rgba.putalpha(0)
    rgba.save(folder / "transparent.png")
    painting(10).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    Image.fromarray((np.asarray(painting(11).convert("L")).astype(np.uint16) * 257)).save(folder / "gray16.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    files = list_images([folder])
    assert {f.suffix for f in files} == {".png", ".jpg", ".webp"}
    # transparent pixels are composited on white paper
    assert (load_rgb(folder / "transparent.png") == 255).all()
    ds = PairDataset([folder], PairConfig(size=32))
    assert len(ds) == 8
    for i in range(len(ds)):
        item = ds[i]  # the broken file is skipped with a message, never a crash
        assert item["truth"].shape == (3, 32, 32)
    assert len(ds.bad) == 1


def test_dataset_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no PNG/JPEG/WebP images"):
        PairDataset([tmp_path / "empty"])


def test_recolouring_changes_truth_and_reference_together():
    rgb = np.asarray(painting(4, 48, 48))
    for seed in range(10):
        pair = make_pair(rgb, np.random.default_rng(seed), PairConfig(size=32, recolour_prob=1.0))
        same = make_pair(rgb, np.random.default_rng(seed), PairConfig(size=32, recolour_prob=0.0))
        # the same view, its channels permuted (never the identity order) ...
        assert torch.equal(pair["sketch"], same["sketch"])
        assert not torch.equal(pair["truth"], same["truth"])
        assert torch.allclose(pair["truth"].sum(0), same["truth"].sum(0), atol=1e-5)
    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 220
    moved = 0
    for seed in range(10):
        pair = make_pair(red, np.random.default_rng(seed), PairConfig(size=32, recolour_prob=1.0))
        # ... and the reference carries the permuted colour, not the original one
        channel = int(pair["truth"].mean((1, 2)).argmax())
        assert int(pair["reference"].mean((1, 2)).argmax()) == channel
        moved += channel != 0
    assert moved >= 5


def test_multi_scale_batches_hold_one_size_each_and_mix_sizes(tmp_path):
    from models.data import infinite_loader

    for i in range(6):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    loader = infinite_loader(PairDataset([tmp_path], PairConfig(size=16)), batch_size=3, seed=1, sizes=[16, 32])
    seen = set()
    for _ in range(12):
        batch = next(loader)
        assert batch["truth"].shape[0] == 3
        h, w = batch["sketch"].shape[-2:]
        assert h == w and batch["truth"].shape[-2:] == (h, w) and batch["hints"].shape[-2:] == (h, w)
        seen.add(h)
    assert seen == {16, 32}
