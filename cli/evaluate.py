"""`panelpaint evaluate`: colour quality on held-out paintings, through the page path, at several working sizes."""
from __future__ import annotations

import json
from pathlib import Path

import click

from cli.options import WORK_SIZE


def _named_weights(values: tuple[str, ...]) -> list[tuple[str, Path]]:
    from panelpaint.settings import get_settings

    named = []
    for value in values or (str(get_settings().weights),):
        name, path = value.split("=", 1) if "=" in value else (None, value)
        path = Path(path)
        if not path.is_file():
            raise click.ClickException(f"weights file {path} not found")
        named.append((name, path))
    return named


@click.command("evaluate")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--weights", "weights", multiple=True, metavar="[NAME=]FILE",
              help="Weights to evaluate (repeatable). Default: PANELPAINT_WEIGHTS or the shipped weights.")
@click.option("--work-size", "work_sizes", multiple=True, type=WORK_SIZE,
              help="Working sizes to measure (repeatable). Default: the size each weights file was calibrated at.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also measure the line art alone, a blind palette bucket fill and the oracle flats.")
@click.option("--ablations", is_flag=True,
              help="Also: flats without the palette, without reference matching, with the shading in the composite, with a "
                   "coloured background, and the network's draft upsampled without flats.")
@click.option("--limit", default=None, type=int, help="Use at most N held-out images.")
@click.option("--threads", default=1, show_default=True, help="torch CPU threads.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the figures as JSON here.")
@click.option("--sheet", type=click.Path(path_type=Path),
              help="Write a sheet of examples (sketch | reference | result | truth) of the first row here (PNG).")
@click.option("--sheet-rows", default=8, show_default=True)
@click.option("--calibrate", is_flag=True,
              help="Record in each weights file the working size that meets the most quality targets, then has "
                   "the best PSNR, among those measured (it becomes the product's default).")
def evaluate_command(data, weights, work_sizes, baselines, ablations, limit, threads, json_out, sheet, sheet_rows,
                     calibrate):
    """Held-out figures at the default settings, through the same code path as the service:
    same-reference PSNR, mean ΔE (CIE Lab), reference-following rate, white paper kept and
    saturation ratio, one table row per weights file and working size.

    DATA: folders of held-out colour paintings (e.g. data/prepared/val).
    """
    import torch

    from cli import quality
    from models.colorizer import Colorizer
    from models.data import list_images
    from panelpaint.weights import WeightsFileError, read_info

    torch.set_num_threads(threads)
    try:
        items = quality.build_held_out(list_images(data), limit=limit)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    methods = {}
    first = None
    sizes_of: dict[Path, dict[int, str]] = {}
    for name, path in _named_weights(weights):
        try:
            info = read_info(path)
            colorizer = Colorizer.from_file(path, device="cpu")
        except (WeightsFileError, ValueError, OSError) as exc:
            raise click.ClickException(f"cannot load weights {path}: {exc}") from exc
        label = name or info.model_version
        for size in work_sizes or (info.work_size,):
            methods[f"{label} @ {size}"] = quality.page_path(colorizer, size)
            sizes_of.setdefault(path, {})[size] = f"{label} @ {size}"
            first = first or methods[f"{label} @ {size}"]
            if ablations:
                methods[f"{label} @ {size}, flats without the palette"] = quality.page_path(colorizer, size, snap=False)
                methods[f"{label} @ {size}, without reference matching"] = quality.page_path(colorizer, size,
                                                                                              match=False)
                methods[f"{label} @ {size}, shading in the composite"] = quality.page_path(colorizer, size,
                                                                                            shading="on")
                methods[f"{label} @ {size}, coloured background"] = quality.page_path(colorizer, size,
                                                                                       background="coloured")
                methods[f"{label} @ {size}, draft without flats"] = quality.page_path(colorizer, size, flats=False)
    if baselines:
        methods["line art alone"] = quality.line_art_alone
        methods["blind palette bucket fill"] = quality.palette_bucket_fill
        methods["oracle flats (the ceiling)"] = quality.oracle_flats
    results = {}
    with click.progressbar(methods.items(), label=f"{len(items)} held-out paintings",
                           item_show_func=lambda kv: kv[0] if kv else "") as bar:
        for name, method in bar:
            with torch.no_grad():
                results[name] = quality.evaluate(method, items)
    click.echo(quality.format_table(results))
    acceptance = quality.match_acceptance(items)
    click.echo(f"reference matching accepts {100 * acceptance['own']:.1f}% of the paintings' own augmented copies "
               f"({acceptance['own_pairs']}) and {100 * acceptance['other']:.1f}% of other paintings "
               f"({acceptance['other_pairs']})")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"images": len(items), "results": results, "matching": acceptance},
                                       indent=1))
    if calibrate:
        from models.weights_io import update_metadata

        for path, rows in sizes_of.items():
            best = quality.best_work_size({size: results[label] for size, label in rows.items()})
            update_metadata(path, {"work_size": str(best), "calibrated_on": f"{len(items)} held-out paintings"})
            click.echo(f"{path}: working size {best} recorded (the most targets met, then the best PSNR, "
                       f"of {sorted(rows)})")
    if sheet and first is not None:
        sheet.parent.mkdir(parents=True, exist_ok=True)
        quality.example_sheet(first, items[:sheet_rows]).save(sheet)
