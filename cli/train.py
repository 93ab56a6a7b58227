"""`panelpaint train` and `panelpaint evaluate`: training runs and held-out metrics of the colouring network.

torch and `models` are imported inside the command bodies, so `panelpaint --help` stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("train")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("runs/train"), show_default=True,
              help="Run folder: weights, training state, metrics.jsonl, sample grids. Rerun to resume.")
@click.option("--val", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Held-out images (folder) for sample grids and periodic evaluation.")
@click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Start from these weights, e.g. models/weights/default.safetensors (fine-tuning).")
@click.option("--config", "generator", default="compact", show_default=True, help="Named generator config.")
@click.option("--norm-groups", type=int, default=None,
              help="Override the generator config's GroupNorm groups (1 = one group: per-channel colour offsets survive).")
@click.option("--size", default=128, show_default=True, help="Training crop size (multiple of the generator stride).")
@click.option("--sizes", default="", help="Multi-scale training: comma-separated crop sizes, one drawn per batch "
              "(e.g. 96,128,160,192); overrides --size for the pairs.")
@click.option("--colour-lambda", default=0.0, show_default=True, type=float,
              help="Weight of the colour-distribution loss (soft a*b* histograms of output and truth).")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--steps", default=1000, show_default=True, help="Total steps of the run (resuming continues to it).")
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--lr-min", default=1e-4, show_default=True, type=float)
@click.option("--warmup", default=50, show_default=True)
@click.option("--style-lr-scale", default=0.1, show_default=True, type=float,
              help="Learning rate of the style encoder relative to --lr.")
@click.option("--no-guides", is_flag=True, help="Train without guide decoders (the paper's ablation).")
@click.option("--stage", type=click.IntRange(1, 2), default=1, show_default=True,
              help="1: L1 with guide decoders (eq. 2). 2: adversarial fine-tuning (eq. 5).")
@click.option("--discriminator", type=click.Choice(["acgan", "dcgan"]), default="acgan", show_default=True)
@click.option("--gan-lambda", default=0.01, show_default=True, type=float, help="Weight of the GAN term in eq. 5.")
@click.option("--hint-prob", default=0.5, show_default=True, type=float)
@click.option("--recolour-prob", default=0.0, show_default=True, type=float,
              help="Share of pairs whose truth and reference are recoloured together (RGB permutation).")
@click.option("--style-size", default=None, type=int, help="Input size of the painting style encoder (new runs).")
@click.option("--workers", default=0, show_default=True, help="Data loader processes.")
@click.option("--threads", default=0, show_default=True, help="torch CPU threads (0 = default).")
@click.option("--log-every", default=10, show_default=True, help="Write metrics.jsonl every N steps.")
@click.option("--checkpoint-every", default=100, show_default=True)
@click.option("--keep-every", default=0, show_default=True, help="Also keep the weights of every N-th step.")
@click.option("--sample-every", default=200, show_default=True)
@click.option("--eval-every", default=0, show_default=True, help="Evaluate on --val every N steps (0 = never).")
@click.option("--seed", default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_command(data, out, val, init, generator, norm_groups, size, sizes, colour_lambda, batch_size, steps, lr, lr_min, warmup, style_lr_scale,
                  no_guides, stage,
                  discriminator, gan_lambda, hint_prob, recolour_prob, style_size, workers, threads, log_every, checkpoint_every,
                  keep_every, sample_every, eval_every, seed, quiet):
    """Train (or fine-tune, or resume) the colouring network on folders of finished colour images.

    DATA: folders of PNG/JPEG/WebP paintings of any size; pairs are made on the fly.
    """
    from models.train import TrainConfig, train

    encoder = {"kind": "painting"} | ({"image_size": style_size} if style_size else {})
    try:
        size_list = [int(v) for v in sizes.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"--sizes must be comma-separated integers, got {sizes!r}") from None
    cfg = TrainConfig(data=[str(d) for d in data], out=str(out), val=[str(v) for v in val],
                      init=str(init) if init else None, generator=generator,
                      generator_overrides={} if norm_groups is None else {"norm_groups": norm_groups}, style_encoder=encoder, size=size,
                      sizes=size_list, colour_lambda=colour_lambda, batch_size=batch_size, steps=steps, lr=lr, lr_min=lr_min, warmup=warmup,
                      style_lr_scale=style_lr_scale,
                      guides=not no_guides, stage=stage, discriminator=discriminator, gan_lambda=gan_lambda,
                      hint_prob=hint_prob, recolour_prob=recolour_prob, workers=workers, threads=threads, log_every=log_every, checkpoint_every=checkpoint_every,
                      keep_every=keep_every, sample_every=sample_every, eval_every=eval_every, seed=seed)
    try:
        trainer = train(cfg, progress=not quiet)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"step {trainer.step_count}: weights in {out / 'weights.safetensors'}")


@click.command("evaluate")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--weights", "weights", multiple=True, metavar="[NAME=]FILE",
              help="Weights to evaluate, as FILE or NAME=FILE (repeatable). Default: the shipped weights.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also evaluate the sketch alone and the palette-transfer heuristic.")
@click.option("--size", default=128, show_default=True)
@click.option("--limit", default=None, type=int, help="Use at most N held-out images.")
@click.option("--pairs", default=3, show_default=True, help="Reference pairs (A, B) per held-out sketch.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the results as JSON here.")
@click.option("--grid", type=click.Path(path_type=Path), help="Write a sample grid of the first weights here (PNG).")
@click.option("--grid-rows", default=6, show_default=True)
def evaluate_command(data, weights, baselines, size, limit, pairs, json_out, grid, grid_rows):
    """Held-out metrics: reference-following rate, PSNR and SSIM (model and baselines).

    DATA: folders of held-out colour images (e.g. data/prepared/val).
    """
    import torch

    from models.data import list_images
    from models.evaluate import build_eval_set, evaluate_method, model_method, palette_method, sample_grid, sketch_method
    from models.weights_io import load_weights

    named = []
    for w in weights or [str(_default_weights())]:
        name, path = w.split("=", 1) if "=" in w else (Path(w).stem, w)
        if not Path(path).is_file():
            raise click.ClickException(f"weights file {path} not found")
        named.append((name, Path(path)))
    try:
        items = build_eval_set(list_images(data), size=size, limit=limit, pairs=pairs)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    methods = {}
    for name, path in named:
        try:
            generator, encoder, _meta = load_weights(path)
        except (ValueError, FileNotFoundError, OSError) as exc:
            raise click.ClickException(f"cannot load weights {path}: {exc}") from exc
        methods[name] = model_method(generator, encoder)
    if baselines:
        methods["sketch only"] = sketch_method
        methods["palette transfer"] = palette_method
    results = {}
    n_sketches = len({id(it.sketch) for it in items})
    click.echo(f"{'method':<24} {'ref-following':>14} {'PSNR':>7} {'SSIM':>6}   "
               f"({n_sketches} held-out sketches x {pairs} reference pairs x 2 trials)")
    for name, method in methods.items():
        with torch.no_grad():
            r = evaluate_method(method, items)
        results[name] = r
        click.echo(f"{name:<24} {r['reference_following_rate']:>8.1%} ±{r['rate_ci95']:.1%} "
                   f"{r['psnr']:>7.2f} {r['ssim']:>6.3f}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"sketches": n_sketches, "pairs": pairs, "size": size,
                                        "weights": {n: str(p) for n, p in named}, "results": results}, indent=1))
    if grid:
        grid.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            sample_grid(methods[named[0][0]], items[::pairs][:grid_rows]).save(grid)


def _default_weights() -> Path:
    from panelpaint.settings import get_settings

    configured = get_settings().weights
    return configured or Path(__file__).resolve().parents[2] / "models" / "weights" / "default.safetensors"
