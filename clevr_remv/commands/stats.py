"""`clevr-remv stats DIR --out FIGDIR`: the dataset's figures beside the published ones."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import click

from clevr_remv.contract import setup_logging

log = logging.getLogger("clevr_remv")


def _split_list(value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


@click.command("stats")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--out", "figdir", type=click.Path(path_type=Path), metavar="FOLDER", required=True,
              help="Folder for stats.json, table.md and the figures (PNG and SVG); created with its parents.")
@click.option("--splits", default=None, metavar="LIST", help="Comma-separated splits (default: every split).")
@click.option("--templates", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Template folder whose lexicon.json says which words name which value "
                   "(default: the repository's templates/).")
@click.option("--no-figures", is_flag=True, help="Only the table, stats.json and table.md (no matplotlib).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", is_flag=True)
def command(dataset: Path, figdir: Path, splits: str | None, templates: Path | None, no_figures: bool,
            no_progress: bool, verbose: bool) -> None:
    """Statistics and figures of the dataset in DATASET, read from its small datasets only.

    Prints a Markdown table per split beside the published CLEVR-Remv figures and writes it,
    with every figure's numbers, to FIGDIR/stats.json; draws the thesis' Figures 6.5-6.7 and
    more into FIGDIR. Never reads the images, masks or depth.
    """
    setup_logging(verbose)
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from clevr_remv.expressions import resolve_templates
    from clevr_remv.outputs import check_output_dir, naming_final_paths
    from clevr_remv.stats.collect import collect, dataset_shards
    from clevr_remv.stats.figures import (
        write_figures,  # imports matplotlib only when drawing
    )
    from clevr_remv.stats.report import build_report, markdown_tables
    from clevr_remv.store.atomic import json_text
    from clevr_remv.store.transaction import Transaction

    check_output_dir(figdir, "--out")  # before any reading
    manifest, shards = dataset_shards(dataset, _split_list(splits))
    lexicon = resolve_templates(templates).lexicon
    total = sum(len(paths) for paths in shards.values())
    log.info("%s: %d shard(s) of %s", dataset, total, ", ".join(shards))
    with logging_redirect_tqdm(), tqdm(total=total, unit="shard", disable=no_progress, dynamic_ncols=True) as bar:
        counts = collect(shards, lexicon, on_shard=lambda _path: bar.update(1))
    report = build_report(str(dataset), manifest, counts)
    table = markdown_tables(report)
    with naming_final_paths():
        figdir.mkdir(parents=True, exist_ok=True)
        # Drawn into a hidden sibling folder, then every file renamed into FIGDIR in one
        # transaction: a stop leaves the old figures or all the new ones, never a mix.
        drafts = Path(tempfile.mkdtemp(prefix=f".{figdir.name}.stats-", dir=figdir.parent))
        try:
            figures = [] if no_figures else write_figures(report, drafts)
            with Transaction(figdir, "stats") as change:
                for drawn in figures:
                    os.replace(drawn, change.stage(figdir / drawn.name))
                change.stage(figdir / "table.md").write_text(table, encoding="utf-8")
                change.stage(figdir / "stats.json").write_text(
                    json_text({**report, "table": table, "figures": [p.name for p in figures]}), encoding="utf-8")
                change.commit()
        finally:
            shutil.rmtree(drafts, ignore_errors=True)
    log.info("wrote stats.json, table.md and %d figure files into %s", len(figures), figdir)
    click.echo(table, nl=False)
