"""`clevr-remv export refcoco|grefcoco|coco DIR --out OUT [--views ...] [--splits ...]`: layouts that
other code bases read unchanged (docs/training.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from clevr_remv.contract import WholeSummaries, counted, setup_logging


def _splits(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [s.strip() for s in value.split(",") if s.strip()]
    if not names:
        raise ValueError("--splits: no split named")
    return names


def _options(middle: list[Callable], workers_help: str) -> list[Callable]:
    """DIRECTORY, --out, then `middle`, then the options every export shares."""
    return [
        click.argument("directory", type=click.Path(path_type=Path)),
        click.option("--out", type=click.Path(path_type=Path), metavar="FOLDER", required=True,
                     help="Folder to create, with its parents (must be empty or absent unless --overwrite)."),
        *middle,
        click.option("--workers", type=int, default=1, show_default=True, help=workers_help),
        click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT (only once the new export is complete)."),
        click.option("--no-progress", is_flag=True, help="No progress bar."),
        click.option("-v", "--verbose", is_flag=True),
    ]


def _decorate(f: Callable, options: list[Callable]) -> Callable:
    for option in reversed(options):
        f = option(f)
    return f


def _export_options(f: Callable) -> Callable:
    """The arguments of the per-view formats (refcoco, grefcoco, coco, hf)."""
    return _decorate(f, _options([
        click.option("--views", default="center", show_default=True,
                     help="center, corners, all, or view indices like 0,8,72,80 (k = row * N + col)."),
        click.option("--splits", default=None, help="Comma-separated splits [default: all, e.g. train,val,test]."),
    ], "Processes writing shards in parallel (PNG and RLE encoding dominate)."))


def _run(export: Callable, directory: Path, out: Path, views: str, splits: str | None, workers: int,
         overwrite: bool, no_progress: bool, verbose: bool) -> dict:
    setup_logging(verbose)
    from tqdm.contrib.logging import logging_redirect_tqdm

    from clevr_remv.outputs import check_output_dir, naming_final_paths

    with logging_redirect_tqdm():
        if workers < 1:
            raise ValueError(f"--workers {workers}: give at least 1")
        # Before any reading; export builds OUT as a hidden sibling and renames it into place.
        check_output_dir(out, "--out", beside=True)
        with naming_final_paths():
            return export(directory, out, views, _splits(splits), overwrite=overwrite, workers=workers,
                          progress=not no_progress)


@click.group("export", cls=WholeSummaries)
def command() -> None:
    """Write a rendered dataset in layouts other code bases read unchanged."""


@command.command("refcoco")
@_export_options
def refcoco(**kwargs) -> None:
    """RefCOCO layout for the REFER API: REFER(OUT, "refcoco", "unc") loads it (LAVT, CRIS ...).
    One object per sentence: a dataset made with --targets any goes through export grefcoco."""
    from clevr_remv.export import export_refcoco

    result = _run(export_refcoco, **kwargs)
    for split, c in result["splits"].items():
        click.echo(f"{split}: {c['images']} images, {c['refs']} refs, "
                   f"{c['skipped_invisible']} (pair, view) skipped (referent not visible)")
    click.echo(f"wrote {kwargs['out']}: REFER data_root={kwargs['out']} dataset=refcoco splitBy=unc")


@command.command("grefcoco")
@_export_options
@click.option("--segmentation", type=click.Choice(["polygon", "rle"]), default="polygon", show_default=True,
              help="polygon: COCO polygons, as gRefCOCO has them, which every step of ReLA reads (a visible "
                   "mask with a hole is filled, and counted); rle: exact masks, read by G_REFER's getMask but "
                   "not by ReLA's load_grefcoco_json.")
def grefcoco(segmentation: str, **kwargs) -> None:
    """gRefCOCO layout for ReLA's G_REFER API: G_REFER(OUT, "grefcoco", "unc") loads it. A sentence
    names one object, several or none (render/expressions --targets any): ann_id is a list, [-1]
    with no_target true for none."""
    import functools

    from clevr_remv.export import export_grefcoco

    result = _run(functools.partial(export_grefcoco, segmentation=segmentation), **kwargs)
    for split, c in result["splits"].items():
        click.echo(f"{split}: {c['images']} images, {c['refs']} refs ({c['multi_target']} multi-target, "
                   f"{c['no_target']} no-target), {c['skipped_invisible']} (pair, view) skipped "
                   "(a target not visible)"
                   + (f"; {c['inexact_polygons']} polygon annotations fill a hole" if c["inexact_polygons"] else ""))
    click.echo(f"wrote {kwargs['out']}: G_REFER data_root={kwargs['out']} dataset=grefcoco splitBy=unc")


@command.command("coco")
@_export_options
@click.option("--amodal", is_flag=True,
              help="Amodal annotations as D2SA, COCOA-cls and UOAIS lay them out: segmentation = the amodal "
                   "mask, visible_mask, invisible_mask, occlude_rate; every object with an in-image amodal "
                   "pixel, hidden ones too (needs a dataset rendered with --amodal-masks).")
def coco(amodal: bool, **kwargs) -> None:
    """COCO instance segmentation: OUT/annotations/instances_SPLIT.json and OUT/SPLIT/*.png."""
    from functools import partial

    from clevr_remv.export import export_coco

    result = _run(partial(export_coco, amodal=amodal), **kwargs)
    for split, c in result["splits"].items():
        click.echo(f"{split}: {c['images']} images, {c['annotations']} object annotations")
    click.echo(f"wrote {kwargs['out']}")


def _check_scene_range(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A malformed --scenes is a usage error (exit 2), found before the dataset is opened."""
    from clevr_remv.data.selection import parse_scene_range

    try:
        parse_scene_range(value)
    except ValueError as error:
        raise click.BadParameter(str(error).removeprefix(f"--scenes {value!r}: "), ctx, param) from None
    return value


def _lightfield_options(f: Callable) -> Callable:
    """The arguments of the light-field formats: whole scenes (every view), chosen by split and index."""
    return _decorate(f, _options([
        click.option("--splits", "--split", "splits", default=None,
                     help="Comma-separated splits [default: all, e.g. train,val,test]."),
        click.option("--scenes", default=None, metavar="A:B", callback=_check_scene_range,
                     help="Scene indices A to B-1 of each split (also A:, :B, or one index A) [default: all]."),
    ], "Processes writing shards in parallel."))


def _run_lightfield(export: Callable, scenes: str | None, **kwargs) -> dict:
    from functools import partial

    return _run(partial(export, scenes=scenes), views="all", **kwargs)


def _report_lightfield(result: dict, out: Path, unit: str) -> None:
    for split, c in result["splits"].items():
        click.echo(f"{split}: {counted(c['scenes'], unit)}")
    click.echo(f"wrote {out}")


@command.command("hci")
@_lightfield_options
@click.option("--all-views", is_flag=True,
              help="Also every view's gt_disp_lowres_CamNNN.pfm, gt_depth_lowres_CamNNN.pfm and valid_mask_CamNNN.png.")
def hci(all_views: bool, scenes: str | None, **kwargs) -> None:
    """HCI 4D light-field benchmark layout: OUT/SPLIT/SCENE/input_Cam000.png ..., parameters.cfg,
    gt_disp_lowres.pfm, gt_depth_lowres.pfm, valid_mask.png, masks and sentences."""
    from functools import partial

    from clevr_remv.export.hci import export_hci

    result = _run_lightfield(partial(export_hci, all_views=all_views), scenes, **kwargs)
    _report_lightfield(result, kwargs["out"], "scene folder")


@command.command("lf-mat")
@_lightfield_options
@click.option("--compress", is_flag=True, help="zlib-compress the .mat files (smaller, slower to write).")
def lf_mat(compress: bool, scenes: str | None, **kwargs) -> None:
    """BasicLFSR .mat per scene, key LF (U, V, H, W, 3) uint8: OUT/training/, OUT/validation/, OUT/test/."""
    from functools import partial

    from clevr_remv.export.lf_mat import export_lf_mat

    result = _run_lightfield(partial(export_lf_mat, compress=compress), scenes, **kwargs)
    _report_lightfield(result, kwargs["out"], ".mat file")


@command.command("focal-stack")
@_lightfield_options
@click.option("--slices", type=click.IntRange(min=1), default=12, show_default=True,
              help="Refocused slices per scene, evenly spread over its disparity range.")
@click.option("--compress", is_flag=True, help="zlib-compress the .mat files (smaller, slower to write).")
def focal_stack(slices: int, compress: bool, scenes: str | None, **kwargs) -> None:
    """Focal stacks of the centre view (salient-object-detection layout): OUT/SPLIT/allfocus/, mat/
    (key img, H x W x 3N uint8), masks/ and sentences/."""
    from functools import partial

    from clevr_remv.export.focal_stack import export_focal_stack

    result = _run_lightfield(partial(export_focal_stack, slices=slices, compress=compress), scenes, **kwargs)
    _report_lightfield(result, kwargs["out"], "focal stack")


_SIZE_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


def _parse_size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """"500MB", "2GB", "64MiB" or plain bytes -> bytes; anything else is a usage error (exit 2)."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _SIZE_UNITS or float(match.group(1)) <= 0:
        raise click.BadParameter(f"{value!r}: give a positive size like 500MB, 2GB or 64MiB", ctx, param)
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


@command.command("hf")
@_export_options
@click.option("--include-hidden", is_flag=True,
              help="Also the (pair, view) whose referent is below the visibility threshold in that view "
                   "(column visible false); by default the rows are RefDataset's samples, visible ones only.")
@click.option("--max-file-size", default="500MB", show_default=True, callback=_parse_size, metavar="SIZE",
              help="Start a new Parquet file before one would grow past SIZE (like push_to_hub's max_shard_size).")
def hf(include_hidden: bool, max_file_size: int, **kwargs) -> None:
    """Hugging Face Parquet: OUT/data/SPLIT-NNNNN-of-MMMMM.parquet (one row per (pair, view): image and
    referent mask as PNG, sentence, ids, view, box, visibility), OUT/README.md (the dataset card);
    datasets.load_dataset(OUT) reads it and push_to_hub publishes it."""
    from functools import partial

    from clevr_remv.export.hf import bytes_per_row, export_hf

    result = _run(partial(export_hf, include_hidden=include_hidden, max_file_bytes=max_file_size), **kwargs)
    files = result["parquet"]["files"]
    for split, c in result["splits"].items():
        hidden = f" ({c['hidden']} with the referent hidden)" if include_hidden else ""
        click.echo(f"{split}: {c['rows']} rows{hidden} from {c['views']} views, "
                   f"{len(files[split])} Parquet file{'s' * (len(files[split]) != 1)}")
    click.echo(f"wrote {kwargs['out']} ({bytes_per_row(result) / 1000:.1f} kB per row): "
               f"datasets.load_dataset({str(kwargs['out'])!r})")
