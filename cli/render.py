"""`panelpaint render`: colour pages and archives of pages locally, without the queue."""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import click

from cli.options import SEED, WORK_SIZE
from panelpaint.formats import ARCHIVES, FILES, Output

# Files per page, and archives of them all.
FORMAT_CHOICES = (*(f.value for f in FILES), *ARCHIVES)


@dataclass
class PageFailure:
    name: str
    message: str


@dataclass
class RenderSummary:
    """What `render_pages` did: output files, failed pages with their messages, summed stage timings."""

    pages: int = 0
    written: list[Path] = field(default_factory=list)
    failures: list[PageFailure] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _PageJob:
    name: str  # shown in messages: file name, or archive.cbz:entry.png
    stem: str  # output file stem
    read: Callable[[], bytes] | None = None
    error: str | None = None


def _safe_stem(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("._") or "page"


def _page_jobs(inputs: list[Path], settings) -> Iterator[_PageJob]:
    """Pages of the inputs in order, archive pages in natural order, read lazily; bad ones carry an error."""
    from panelpaint.archives import ArchiveError, is_archive, iter_archive
    from panelpaint.images import page_file_bytes_limit

    index = 0
    for path in inputs:
        if not is_archive(path):
            index += 1
            yield _PageJob(path.name, f"{index:04d}_{_safe_stem(path.stem)}", read=path.read_bytes)
            continue
        found = 0
        try:
            for entry in iter_archive(path, max_entries=settings.max_archive_entries,
                                      max_bytes=settings.max_archive_bytes,
                                      max_entry_bytes=page_file_bytes_limit(settings.max_image_pixels)):
                index += 1
                found += 1
                stem = f"{index:04d}_{_safe_stem(path.stem)}_{_safe_stem(Path(entry.name).stem)}"
                yield _PageJob(f"{path.name}:{entry.name}", stem, read=lambda d=entry.data: d, error=entry.error)
        except ArchiveError as exc:
            index += 1
            yield _PageJob(path.name, f"{index:04d}_{_safe_stem(path.stem)}", error=str(exc))
            continue
        if not found:
            index += 1
            yield _PageJob(path.name, f"{index:04d}_{_safe_stem(path.stem)}", error="archive holds no page images")


def _count_jobs(inputs: list[Path], settings) -> int:
    """How many pages `_page_jobs` will yield, from the archives' directories only (for the progress bar)."""
    import zipfile

    from panelpaint.archives import ArchiveError, is_archive, list_archive

    total = 0
    for path in inputs:
        if not is_archive(path):
            total += 1
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                listing = list_archive(zf, max_entries=settings.max_archive_entries, max_bytes=settings.max_archive_bytes)
            total += max(1, len(listing.pages) + len(listing.errors))
        except (ArchiveError, zipfile.BadZipFile, OSError):
            total += 1
    return total


def output_kinds(formats: tuple[str, ...] | list[str]) -> set[str]:
    """Per-page output kinds (see `pages.write_outputs`) for the command's --format choices."""
    if set(formats) == {"cbz"}:
        return {Output.PNG}  # the CBZ holds the composites only
    kinds = {Output.JSON}
    if {Output.PNG, *ARCHIVES} & set(formats):
        kinds |= {Output.PNG, Output.PREVIEW}
    return kinds | ({Output.PSD, Output.ORA} & set(formats))


def render_pages(
    inputs: list[Path],
    style_path: Path,
    out_dir: Path,
    colorizer,
    *,
    settings,
    direction: str = "ltr",  # a `panelpaint.panels.Direction` (imported with the pipeline)
    formats: tuple[str, ...] = ("png",),
    work_size: int = 512,
    seed: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> RenderSummary:
    """Colour every page of `inputs` (images or ZIP/CBZ archives) into `out_dir`; one bad page never stops the rest.

    With "cbz" / "zip" in `formats`, the pages are also packed into `out_dir/<name>.cbz|zip` (the CBZ
    holds the composites in reading order, the ZIP every output); unless "png", "psd" or "ora" is
    asked for too, the pages are staged in a temporary folder and only the archives remain.
    """
    from tqdm import tqdm

    from panelpaint.archives import write_archive
    from panelpaint.comicinfo import COMICINFO_NAME, ComicInfo, ComicPage
    from panelpaint.panels import Direction
    from panelpaint.images import ImageError, open_image
    from panelpaint.pages import load_page, render_page, write_outputs

    summary = RenderSummary()
    style = open_image(style_path, max_pixels=settings.max_image_pixels)
    kinds = output_kinds(formats)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Packed-only output: pages go to a staging folder that is removed once packed.
    loose = bool(set(FILES) & set(formats))
    page_dir = out_dir if loose else Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        composites: list[tuple[str, Path]] = []
        total = _count_jobs(inputs, settings)
        for job in tqdm(_page_jobs(inputs, settings), total=total, desc="pages", unit="page", disable=not progress):
            summary.pages += 1
            if job.error:
                summary.failures.append(PageFailure(job.name, job.error))
                echo(f"error: {job.name}: {job.error}")
                continue
            try:
                t = time.perf_counter()
                page = load_page(job.read(), name=job.name, max_pixels=settings.max_image_pixels)
                decode = time.perf_counter() - t
                result = render_page(page, style, colorizer, direction=direction, work_size=work_size, seed=seed)
                result.timings["decode"] = decode
                paths = write_outputs(result, page_dir, kinds, stem=job.stem)
            except Exception as exc:  # noqa: BLE001 - one page's failure must not stop the batch
                if isinstance(exc, ImageError):
                    message = exc.message.removeprefix(f"{job.name}: ")
                else:
                    message = f"{type(exc).__name__}: {exc}"
                summary.failures.append(PageFailure(job.name, message))
                echo(f"error: {job.name}: {message}")
                continue
            for key, value in result.timings.items():
                summary.timings[key] = summary.timings.get(key, 0.0) + value
            summary.written += paths.values()
            if "composite" in paths:
                composites.append((paths["composite"].name, paths["composite"]))
        archive_name = _safe_stem(inputs[0].stem) if len(inputs) == 1 else "pages"
        pages_written = list(summary.written)
        if "cbz" in formats:
            # Comic readers take the title and the way pages turn from the CBZ's ComicInfo.xml.
            book = ComicInfo(series=archive_name, title=archive_name, direction=Direction(direction),
                             pages=[ComicPage(path.stat().st_size) for _, path in composites])
            summary.written.append(write_archive(out_dir / f"{archive_name}.cbz",
                                                 [*composites, (COMICINFO_NAME, book.to_xml())]))
        if "zip" in formats:
            summary.written.append(write_archive(out_dir / f"{archive_name}.zip", [(p.name, p) for p in pages_written]))
        if not loose:
            summary.written = [p for p in summary.written if p not in pages_written]
    finally:
        if not loose:
            shutil.rmtree(page_dir, ignore_errors=True)
    return summary


def load_colorizer(settings):
    """The real colouring network; imported here so `panelpaint --help` never loads torch."""
    try:
        from models.colorizer import Colorizer
    except ImportError as exc:
        raise click.ClickException(f"the colouring model is not available ({exc}); install panelpaint with torch") from None
    try:
        return Colorizer.from_file(settings.weights, device=settings.device, compile=settings.compile)
    except FileNotFoundError as exc:  # models.colorizer.WeightsNotFoundError is one
        message = str(exc)
        if "--weights" not in message:
            message += "; pass --weights FILE or set PANELPAINT_WEIGHTS"
        raise click.ClickException(message) from None


@click.command("render")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--style", "style_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Style reference image for every page.")
@click.option("--rtl", is_flag=True, help="Right-to-left reading order (manga).")
@click.option("--format", "formats", type=click.Choice(FORMAT_CHOICES), multiple=True, default=("png",),
              show_default=True, help="Outputs (repeatable): PNG layers, layered PSD, OpenRaster, a CBZ of composites, or a ZIP of everything.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Generator weights (.safetensors); default from settings.")
@click.option("--size", "work_size", type=WORK_SIZE, default=None,
              help="Working resolution of the network (long side); default: PANELPAINT_WORK_SIZE, else the "
                   "size the weights were calibrated at.")
@click.option("--seed", type=SEED, default=None, help="A variant: each seed gives another plausible colouring.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder.")
def render(inputs, style_path, rtl, formats, weights, work_size, seed, out_dir):
    """Colour PAGES_OR_ARCHIVES (PNG, JPEG, TIFF, WebP, ZIP, CBZ) with one style reference."""
    import sys

    from tqdm import tqdm

    from panelpaint.images import ImageError
    from panelpaint.panels import Direction
    from panelpaint.settings import SettingsError, get_settings

    from panelpaint.weights import WeightsFileError

    try:
        settings = get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if weights is not None:
        settings = settings.model_copy(update={"weights": weights})
    colorizer = load_colorizer(settings)
    try:
        work_size = work_size or settings.effective_work_size()
    except WeightsFileError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        summary = render_pages(
            list(inputs), style_path, out_dir, colorizer, settings=settings, direction=Direction.rtl if rtl else Direction.ltr,
            formats=formats, work_size=work_size, seed=seed,
            echo=lambda m: tqdm.write(m, file=sys.stderr),  # keeps the progress bar intact
        )
    except ImageError as exc:
        raise click.ClickException(f"style reference: {exc.message}") from None
    ok = summary.pages - len(summary.failures)
    click.echo(f"{ok} of {summary.pages} page(s) coloured into {out_dir}")
    if summary.failures:
        click.echo(f"{len(summary.failures)} page(s) failed:", err=True)
        for f in summary.failures:
            click.echo(f"  {f.name}: {f.message}", err=True)
        raise SystemExit(1)
