"""`clevr-remv evaluate-disparity DIR --split S --predictions FOLDER`: the HCI benchmark's
disparity metrics (MSE×100, BadPix, Q25) of a light-field depth estimator, or of a reference point."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from clevr_remv.contract import setup_logging

log = logging.getLogger("clevr_remv")


@click.command("evaluate-disparity")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Split to evaluate on.")
@click.option("--predictions", type=click.Path(path_type=Path), default=None, metavar="FOLDER",
              help="The benchmark's algo_results/<algo> folder (or its disp_maps/): one <scene>.pfm per scene, "
                   "named as the exports name scenes (test_00003.pfm).")
@click.option("--baseline", type=click.Choice(["zero", "plane-sweep"]), default=None,
              help="Score a reference point instead: zero (everything on the focus plane) or plane-sweep "
                   "(a classical estimate from the views).")
@click.option("--scenes", default=None, metavar="A:B", help="Scene indices A to B-1 of the split [default: all].")
@click.option("--json", "json_path", type=click.Path(path_type=Path), metavar="FILE.json", default=None,
              help="Also write the figures as JSON (atomically; its folder must exist).")
@click.option("--plot", "plot_dir", type=click.Path(path_type=Path), metavar="FOLDER", default=None,
              help="Write FOLDER/<scene>.png per scene: truth, prediction, error and BadPix(0.07) pictures.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", is_flag=True)
def command(dataset: Path, split: str, predictions: Path | None, baseline: str | None, scenes: str | None,
            json_path: Path | None, plot_dir: Path | None, no_progress: bool, verbose: bool) -> None:
    """Score light-field disparity estimates of the centre view on DATASET.

    Prints MSE*100, BadPix(0.01), BadPix(0.03), BadPix(0.07) and Q25 per scene and their mean, as the
    HCI 4D light-field benchmark defines them, over the pixels with a surface, without a 15-pixel
    border. Predictions that are missing, of the wrong size or not finite stop it with one line.
    """
    setup_logging(verbose)
    from clevr_remv.data.selection import parse_scene_range
    from clevr_remv.evaluation.disparity_scoring import (
        ErrorPictures,
        evaluate_disparity,
        format_report,
        write_report_json,
    )
    from clevr_remv.outputs import (
        JSON_SUFFIXES,
        check_output_dir,
        check_output_file,
        naming_final_paths,
    )

    if predictions is None and baseline is None:
        raise click.UsageError("give --predictions FOLDER or --baseline zero|plane-sweep")
    if predictions is not None and baseline is not None:
        raise click.UsageError("--predictions and --baseline exclude each other: score one at a time")
    try:
        parse_scene_range(scenes)
    except ValueError as error:
        raise click.BadParameter(str(error).removeprefix(f"--scenes {scenes!r}: "), param_hint="'--scenes'") from None
    if json_path is not None:  # before any reading: a typo must not cost the evaluation
        check_output_file(json_path, JSON_SUFFIXES, "--json")
    if plot_dir is not None:
        check_output_dir(plot_dir, "--plot")

    def progress(total: int):
        from tqdm import tqdm

        bar = tqdm(total=total, unit="scene", dynamic_ncols=True, disable=no_progress)
        return lambda: bar.update(1)

    with naming_final_paths():
        evaluation = evaluate_disparity(dataset, split, predictions=predictions, baseline=baseline, scenes=scenes,
                                        progress=progress, on_scene=ErrorPictures(plot_dir) if plot_dir else None)
        click.echo(format_report(evaluation))
        if json_path is not None:
            write_report_json(evaluation, json_path)
            log.info("wrote %s", json_path)
        if plot_dir is not None:
            log.info("wrote %d picture(s) into %s", len(evaluation.scenes), plot_dir)
