"""`clevr-remv evaluate DIR --predictions PRED.h5`: P@K, mean/overall IoU per view and MVR."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from clevr_remv.contract import setup_logging

log = logging.getLogger("clevr_remv")


@click.command("evaluate")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Split to evaluate on.")
@click.option("--predictions", type=click.Path(path_type=Path), default=None,
              help="HDF5 file (ref_id, view, mask) or folder of <ref_id>_<view>.png masks.")
@click.option("--baseline", type=click.Choice(["oracle", "centre-mask"]), default=None,
              help="Score a reference point instead of predictions: the ground truth (oracle) or the "
                   "centre view's mask in every view (centre-mask).")
@click.option("--views", default=None, metavar="center|corners|all|LIST",
              help="Views to evaluate, e.g. corners or 0,8,40 (default: those in the predictions; "
                   "corners and centre for a baseline). The centre is added for MVR.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), metavar="FILE.json", default=None,
              help="Also write the figures as JSON (atomically; its folder must exist).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), metavar="FILE.png|svg|pdf", default=None,
              help="Draw overall IoU over the view grid as a heat map (format from the suffix).")
@click.option("--by", type=click.Choice(["occlusion", "hops", "targets"]), multiple=True,
              help="Also give every figure per group, with its (pair, view) count: occlusion, per bin of the "
                   "referent's visible fraction (1.0, [0.75,1), [0.5,0.75), [0.25,0.5), (0,0.25)), when --plot "
                   "draws overall IoU against it; hops, per relation count of the sentence (0-3); targets, per "
                   "number of objects it names (none, one, several). Repeat to give several.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", is_flag=True)
def command(dataset: Path, split: str, predictions: Path | None, baseline: str | None, views: str | None,
            json_path: Path | None, plot_path: Path | None, by: tuple[str, ...], no_progress: bool,
            verbose: bool) -> None:
    """Score referring-segmentation masks on DATASET view by view.

    Prints P@0.5 ... P@0.9, mean IoU and overall IoU per view, their mean and standard deviation over the
    chosen views, and Multi-View Robustness (MVR) from overall and from mean IoU. Where some sentence names
    several objects or none (expressions --targets any), the ground truth is the union of the named objects
    and the figures are GRES's: gIoU, cIoU, N-acc, T-acc, and P@K over the targeted sentences. Predictions
    that do not fit the dataset, or miss a (pair, view) to evaluate, stop with one line naming the first
    problem.
    """
    setup_logging(verbose)
    from clevr_remv.evaluation.scorecard import (
        format_report,
        plot_report,
        write_report_json,
    )
    from clevr_remv.evaluation.scoring import evaluate
    from clevr_remv.outputs import (
        JSON_SUFFIXES,
        PICTURE_SUFFIXES,
        check_output_file,
        naming_final_paths,
    )

    bars = []

    def progress(total: int):
        from tqdm import tqdm

        bars.append(tqdm(total=total, unit="view", desc="scene views", dynamic_ncols=True, disable=no_progress))
        return lambda: bars[-1].update(1)

    if predictions is None and baseline is None:
        raise click.UsageError("give --predictions PRED.h5 (or a PNG folder) or --baseline oracle|centre-mask")
    if predictions is not None and baseline is not None:
        raise click.UsageError("--predictions and --baseline exclude each other: score one at a time")
    if json_path is not None:  # before any reading: a typo must not cost the evaluation
        check_output_file(json_path, JSON_SUFFIXES, "--json")
    if plot_path is not None:
        check_output_file(plot_path, PICTURE_SUFFIXES, "--plot")
    try:
        evaluation = evaluate(dataset, split, predictions=predictions, baseline=baseline, views=views,
                              progress=progress, by=by or None)
    finally:  # an error's line starts on a line of its own, also in a farm's log
        for bar in bars:
            bar.close()
    click.echo(format_report(evaluation))
    with naming_final_paths():
        if json_path is not None:
            write_report_json(evaluation, json_path)
            log.info("wrote %s", json_path)
        if plot_path is not None:
            plot_report(evaluation, plot_path)
            log.info("wrote %s", plot_path)
