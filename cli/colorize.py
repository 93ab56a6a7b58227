"""`panelpaint colorize`: colour one line-art image from a style reference (and optional colour dots)."""
from __future__ import annotations

from pathlib import Path

import click

from cli.options import SEED, WORK_SIZE

IMAGE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _open(path: Path, what: str):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return img
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise click.ClickException(f"cannot read {what} {path}: {exc}") from None


@click.command("colorize")
@click.argument("sketch", type=IMAGE)
@click.option("--style", "style_path", required=True, type=IMAGE, help="Colour reference image.")
@click.option("--hints", "hints_path", type=IMAGE, default=None,
              help="RGBA image the size of SKETCH; pixels with alpha > 0 are colour dots.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Weights file (default: PANELPAINT_WEIGHTS or models/weights/default.safetensors).")
@click.option("--size", type=WORK_SIZE, default=None,
              help="Working size: long side fed to the network (default: PANELPAINT_WORK_SIZE, else the size "
                   "the weights were calibrated at).")
@click.option("--device", type=click.Choice(["auto", "cuda", "mps", "cpu"]), default=None,
              help="Where to run (default PANELPAINT_DEVICE).")
@click.option("--seed", type=SEED, default=None, help="A variant: each seed gives another plausible colouring.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output PNG.")
def colorize(sketch: Path, style_path: Path, hints_path: Path | None, weights: Path | None, size: int | None,
             device: str | None, seed: int | None, output: Path) -> None:
    """Colour SKETCH in the style of --style and write an RGB image of the same size to -o."""
    from PIL import Image

    from panelpaint.settings import SettingsError, get_settings

    try:
        settings = get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    sketch_img, style_img = _open(sketch, "sketch"), _open(style_path, "style image")
    hints_img = _open(hints_path, "hints image") if hints_path else None

    from cli.render import load_colorizer
    from panelpaint.hints import dots_from_image
    from panelpaint.pages import colour_image
    from panelpaint.weights import WeightsFileError

    update = {k: v for k, v in (("weights", weights), ("device", device)) if v is not None}
    settings = settings.model_copy(update=update)
    colorizer = load_colorizer(settings)
    try:
        dots = dots_from_image(hints_img, sketch_img.size) if hints_img is not None else None
        result = colour_image(sketch_img, style_img, colorizer, hints=dots,
                              work_size=size or settings.effective_work_size(), seed=seed)
    except (ValueError, TypeError, WeightsFileError) as exc:
        raise click.ClickException(str(exc)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    fmt = None if output.suffix else "PNG"
    result.composite.save(output, format=fmt)
    click.echo(f"wrote {output} ({result.size[0]}x{result.size[1]}, model {colorizer.model_version}, "
               f"{colorizer.device.type})")
