"""Training on generated images: the loss falls, checkpoints load, resume continues exactly, stage 2 runs."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from generated_art import paint_folder
from models.checkpoint import load_training_state
from models.style_encoders import build_style_encoder
from models.train import STATE_FILE, WEIGHTS_FILE, Trainer, TrainConfig, sample_references, standardise_style
from models.weights_io import load_weights
from cli.main import main as cli

torch.set_num_threads(1)

TINY_ENCODER = {"kind": "painting", "widths": [8], "image_size": 16, "hist_bins": 4, "hidden": 32}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("art")
    return paint_folder(root / "train", 8), paint_folder(root / "val", 4, seed=50)


def tiny_config(folders, out, **kw) -> TrainConfig:
    train, val = folders
    base = TrainConfig(data=[str(train)], val=[str(val)], out=str(out), generator="tiny", style_encoder=TINY_ENCODER,
                       size=16, batch_size=4, steps=4, lr=5e-3, lr_min=1e-3, warmup=2, log_every=1,
                       checkpoint_every=1000, sample_every=1000, eval_images=4, threads=1, seed=0)
    return replace(base, **kw)


def read_metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_the_loss_and_writes_a_loadable_checkpoint(folders, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(tiny_config(folders, out, steps=24))
    trainer.run(progress=False)
    losses = [m["l1_out"] for m in read_metrics(out) if "l1_out" in m]
    assert len(losses) == 24
    assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:3]) / 3
    assert {"l1_guide1", "l1_guide2", "images_per_s", "lr"} <= set(read_metrics(out)[-1])
    assert (out / "samples" / "step_000024.png").is_file()
    generator, encoder, meta = load_weights(out / WEIGHTS_FILE)
    assert meta["step"] == "24" and meta["config"]["generator"]["channels"] == [8, 16, 32]
    sketch, ref = torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16)
    trainer.generator.eval()
    trainer.encoder.eval()
    with torch.no_grad():
        assert torch.allclose(generator(sketch, encoder(ref)), trainer.generator(sketch, trainer.encoder(ref)),
                              atol=1e-6)


def test_resume_continues_the_step_count_and_the_optimiser_state(folders, tmp_path):
    out = tmp_path / "run"
    first = Trainer(tiny_config(folders, out, steps=3))
    first.run(progress=False)
    saved = {i: {k: v.clone() for k, v in s.items()} for i, s in first.opt_g.state_dict()["state"].items()}
    guide_before = first.generator.guide1.out.weight.detach().clone()

    resumed = Trainer(tiny_config(folders, out, steps=5))
    assert resumed.step_count == 3
    state = resumed.opt_g.state_dict()["state"]
    assert state.keys() == saved.keys()
    for i in saved:
        assert torch.equal(state[i]["exp_avg"], saved[i]["exp_avg"])
        assert torch.equal(state[i]["exp_avg_sq"], saved[i]["exp_avg_sq"])
        assert float(state[i]["step"]) == 3
    assert torch.equal(resumed.generator.guide1.out.weight, guide_before)  # guides travel in the state file
    resumed.run(progress=False)
    assert resumed.step_count == 5
    assert [m["step"] for m in read_metrics(out)] == [1, 2, 3, 4, 5]
    assert load_training_state(out / STATE_FILE)["step"] == 5
    assert not torch.equal(resumed.opt_g.state_dict()["state"][0]["exp_avg"], saved[0]["exp_avg"])


def test_ablation_without_guides_never_trains_them(folders, tmp_path):
    trainer = Trainer(tiny_config(folders, tmp_path / "run", guides=False, steps=2))
    before = trainer.generator.guide2.out.weight.detach().clone()
    trainer.run(progress=False)
    assert torch.equal(trainer.generator.guide2.out.weight, before)
    assert "l1_guide1" not in read_metrics(tmp_path / "run")[-1]


@pytest.mark.parametrize("kind", ["acgan", "dcgan"])
def test_stage2_adversarial_step_updates_the_discriminator(folders, tmp_path, kind):
    stage1 = Trainer(tiny_config(folders, tmp_path / "s1", steps=1))
    stage1.run(progress=False)
    cfg = tiny_config(folders, tmp_path / "s2", stage=2, discriminator=kind, d_widths=[8, 16], steps=2,
                      init=str(tmp_path / "s1" / WEIGHTS_FILE), gan_lambda=0.1)
    trainer = Trainer(cfg)
    assert trainer.step_count == 0  # a new run initialised from weights, not a resume
    d_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    trainer.run(progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, trainer.discriminator.parameters()))
    last = read_metrics(tmp_path / "s2")[-1]
    assert "d_real" in last and "g_adv" in last
    if kind == "acgan":
        assert trainer.discriminator.style.out_features == 4096 and "g_aux" in last
    # the discriminator and its optimiser are checkpointed too
    resumed = Trainer(replace(cfg, steps=3))
    assert resumed.step_count == 2
    assert all(torch.equal(a, b) for a, b in zip(resumed.discriminator.parameters(), trainer.discriminator.parameters()))


def test_cli_train_and_evaluate_on_a_generated_folder(folders, tmp_path):
    train, val = folders
    out = tmp_path / "cli-run"
    runner = CliRunner()
    res = runner.invoke(cli, ["train", str(train), "--val", str(val), "-o", str(out), "--config", "tiny",
                              "--size", "16", "--style-size", "16", "--batch-size", "2", "--steps", "2",
                              "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (out / WEIGHTS_FILE).is_file() and (out / STATE_FILE).is_file()
    meta_version = load_weights(out / WEIGHTS_FILE)[2]["model_version"]
    report = tmp_path / "eval.json"
    res = runner.invoke(cli, ["evaluate", str(val), "--weights", f"mine={out / WEIGHTS_FILE}", "--work-size", "64",
                              "--work-size", "96", "--ablations", "--json", str(report),
                              "--sheet", str(tmp_path / "sheet.png"), "--calibrate"])
    assert res.exit_code == 0, res.output
    figures = json.loads(report.read_text())
    results = figures["results"]
    assert {"mine @ 64", "mine @ 96", "mine @ 64, flats without the palette", "mine @ 96, draft without flats",
            "mine @ 64, without reference matching", "line art alone", "blind palette bucket fill", "oracle flats (the ceiling)"} <= set(results)
    assert results["mine @ 64"]["trials"] == 8 and results["mine @ 64"]["images"] == 4
    assert results["line art alone"]["paper_kept"] > 0.99 and results["line art alone"]["saturation"] < 0.01
    assert results["oracle flats (the ceiling)"]["psnr"] > results["line art alone"]["psnr"]
    assert "| mine @ 96 |" in res.output
    assert figures["matching"]["own_pairs"] == 4 and figures["matching"]["other_pairs"] == 8
    assert "reference matching accepts" in res.output
    assert (tmp_path / "sheet.png").is_file()
    # --calibrate recorded the better of the two sizes in the weights; the tensors are untouched.
    from panelpaint.weights import read_info

    from cli.quality import best_work_size

    best = best_work_size({size: results[f"mine @ {size}"] for size in (64, 96)})
    assert read_info(out / WEIGHTS_FILE).work_size == best
    assert load_weights(out / WEIGHTS_FILE)[2]["model_version"] == meta_version
    res = runner.invoke(cli, ["evaluate", str(val), "--weights", str(tmp_path / "missing.safetensors")])
    assert res.exit_code != 0 and "not found" in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(cli, ["train", str(tmp_path / "empty"), "-o", str(tmp_path / "x"), "--quiet"])
    assert res.exit_code != 0 and "no PNG/JPEG/WebP images" in res.output


def test_cli_train_with_the_vgg19_encoder_starts_from_the_settings_file(folders, tmp_path, monkeypatch):
    """`--style-encoder vgg19` takes torchvision's weights from PANELPAINT_VGG19_WEIGHTS, and says so without it."""
    import models.train
    from panelpaint.settings import get_settings

    seen = []
    monkeypatch.setattr(models.train, "train", lambda cfg, progress=True: seen.append(cfg) or Trainer.__new__(Trainer))
    monkeypatch.setattr(Trainer, "step_count", 0, raising=False)
    args = ["train", str(folders[0]), "-o", str(tmp_path / "run"), "--style-encoder", "vgg19", "--quiet"]
    monkeypatch.delenv("PANELPAINT_VGG19_WEIGHTS", raising=False)
    get_settings.cache_clear()
    res = CliRunner().invoke(cli, args)
    assert res.exit_code != 0 and "PANELPAINT_VGG19_WEIGHTS" in res.output and not seen
    vgg = tmp_path / "vgg19.pth"
    vgg.write_bytes(b"not read here")
    monkeypatch.setenv("PANELPAINT_VGG19_WEIGHTS", str(vgg))
    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        assert seen[0].style_encoder == {"kind": "vgg19", "weights": str(vgg)}
        res = CliRunner().invoke(cli, args + ["--style-size", "64"])
        assert res.exit_code != 0 and "painting encoder" in res.output
    finally:
        get_settings.cache_clear()


def test_fresh_style_encoder_is_standardised_on_training_references(folders, tmp_path):
    cfg = tiny_config(folders, tmp_path / "run")
    refs = sample_references(sorted(folders[0].glob("*.png")), cfg, n=8)
    assert refs.shape == (8, 3, 16, 16)
    encoder = build_style_encoder(**TINY_ENCODER)
    with torch.no_grad():
        raw = encoder(refs)
        standardise_style(encoder, refs)
        y = encoder(refs)
    # raw vectors share a large common part; standardised ones vary around zero with unit spread
    assert raw.mean(0).abs().mean() > 0.5 * raw.std(0).mean()
    assert y.mean(0).abs().max() < 1e-3
    assert torch.allclose(y.std(0), torch.ones(4096), atol=1e-3)


def test_multi_scale_training_with_the_colour_loss_logs_it_and_trains(folders, tmp_path):
    out = tmp_path / "ms"
    trainer = Trainer(tiny_config(folders, out, steps=6, sizes=[16, 32], colour_lambda=0.5))
    trainer.run(progress=False)
    logged = [m for m in read_metrics(out) if "colour" in m]
    assert len(logged) == 6 and all(m["colour"] >= 0 for m in logged)
    assert all(m["loss"] > m["l1_out"] for m in logged)
