"""`clevr-remv show DIR --split S --scene I --out FILE.png [--html FILE.html]`: look at one scene."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from clevr_remv.contract import setup_logging

log = logging.getLogger("clevr_remv")


@click.command("show")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--split", default="train", show_default=True, help="Split of the scene (train, val, test).")
@click.option("--scene", "index", type=int, default=0, show_default=True,
              help="Scene index within the split (the scene JSON's `index`).")
@click.option("--out", type=click.Path(path_type=Path), metavar="FILE.png|svg|pdf", default=None,
              help="Picture to write (format from the suffix): mosaic, labelled masks, depth, sentences.")
@click.option("--html", type=click.Path(path_type=Path), metavar="FILE.html", default=None,
              help="Self-contained light-field viewer page to write (opens from disk, loads nothing).")
@click.option("--image-format", type=click.Choice(["auto", "jpeg", "png"]), default="auto", show_default=True,
              help="How the viewer embeds the views: jpeg (quality 90, several times smaller) or lossless png; "
                   "auto: png up to 160x120 px views, else jpeg.")
@click.option("-v", "--verbose", is_flag=True)
def command(directory: Path, split: str, index: int, out: Path | None, html: Path | None, image_format: str,
            verbose: bool) -> None:
    """Draw scene I of split S of the dataset in DIRECTORY as a picture (--out) and/or a viewer (--html)."""
    setup_logging(verbose)
    if out is None and html is None:
        raise click.UsageError("nothing to write: give --out FILE.png and/or --html FILE.html")
    from clevr_remv.outputs import (
        HTML_SUFFIXES,
        PICTURE_SUFFIXES,
        check_output_file,
        naming_final_paths,
    )

    if out is not None:  # before any reading
        check_output_file(out, PICTURE_SUFFIXES, "--out")
    if html is not None:
        check_output_file(html, HTML_SUFFIXES, "--html")
    from clevr_remv.show.gather import load_scene

    start = time.perf_counter()
    data = load_scene(directory, split, index)
    log.debug("read %d views of %s scene %d in %.2f s", len(data.images), split, index, time.perf_counter() - start)
    with naming_final_paths():
        if out is not None:
            from clevr_remv.show.picture import save_figure, scene_figure

            save_figure(scene_figure(data), out)
            click.echo(f"wrote {out}")
        if html is not None:
            from clevr_remv.show.viewer import save_viewer

            size = save_viewer(data, html, image_format=image_format)
            click.echo(f"wrote {html} ({size / 1e6:.1f} MB)")
