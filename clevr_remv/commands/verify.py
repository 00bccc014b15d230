"""`clevr-remv verify DIR [--quarantine]`: check every shard against the plan, manifest and contract."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from clevr_remv.contract import setup_logging

log = logging.getLogger("clevr_remv")


@click.command("verify")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--quarantine", "move_bad", is_flag=True,
              help="Move bad shards to DIR/.quarantine/<split>/ (nothing is deleted) and remove dataset.json and "
                   "the split files that list them, so that re-running render re-creates exactly those shards.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", is_flag=True)
def command(directory: Path, move_bad: bool, no_progress: bool, verbose: bool) -> None:
    """Check the dataset in DIRECTORY: every planned shard, dataset.json and the split files.

    Every shard the configuration plans is read chunk by chunk, so the checksums are tested. One
    line per bad file, a summary, and exit 1 if anything is bad."""
    setup_logging(verbose)
    from tqdm import tqdm

    from clevr_remv.store.verify import quarantine, verify_dataset

    bar = None

    def start(total_views: int) -> None:
        nonlocal bar
        bar = tqdm(total=total_views, unit="view", dynamic_ncols=True, disable=no_progress, desc="verify")

    try:
        report = verify_dataset(directory, on_view=lambda: bar.update(1), on_start=start)
    finally:
        if bar is not None:
            bar.close()
    for line in report.lines():
        click.echo(f"bad: {line}")
    click.echo(report.summary())
    if report.ok:
        return
    if move_bad:
        for line in quarantine(report):
            click.echo(line)
        click.echo("re-run the same `clevr-remv render` (or `clevr-remv finalize` for the commands) to redo them")
    raise ValueError(f"{len(report.problems)} bad file(s) in {directory}")
