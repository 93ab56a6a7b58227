"""`panelpaint train`: training runs of the colouring network (held-out figures: `cli.evaluate`).

torch and `models` are imported inside the command bodies, so `panelpaint --help` stays fast.
"""
from __future__ import annotations

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
@click.option("--style-encoder", "style_encoder", type=click.Choice(["painting", "vgg19"]), default="painting",
              show_default=True, help="Style encoder of a new run: ours, or the paper's VGG19, which starts from "
                                      "torchvision's ImageNet weights (the file PANELPAINT_VGG19_WEIGHTS names).")
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
                  discriminator, gan_lambda, hint_prob, recolour_prob, style_encoder, style_size, workers, threads, log_every, checkpoint_every,
                  keep_every, sample_every, eval_every, seed, quiet):
    """Train (or fine-tune, or resume) the colouring network on folders of finished colour images.

    DATA: folders of PNG/JPEG/WebP paintings of any size; pairs are made on the fly.
    """
    from models.train import TrainConfig, train

    encoder = _style_encoder(style_encoder, style_size)
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


def _style_encoder(kind: str, style_size: int | None) -> dict:
    """The style encoder of a new run, as `TrainConfig.style_encoder` holds it."""
    if kind == "painting":
        return {"kind": "painting"} | ({"image_size": style_size} if style_size else {})
    if style_size:
        raise click.BadParameter("is for the painting encoder; VGG19 sees 224 px", param_hint="--style-size")
    from panelpaint.settings import SettingsError, get_settings

    try:
        weights = get_settings().vgg19_weights
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if weights is None:
        raise click.ClickException("--style-encoder vgg19 starts from torchvision's VGG19 weights: download "
                                   "vgg19-dcbb9e9d.pth yourself and set PANELPAINT_VGG19_WEIGHTS to its path")
    return {"kind": "vgg19", "weights": str(weights)}
