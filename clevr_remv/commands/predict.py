"""`clevr-remv predict DIR RUN --split test --views corners --out pred.h5`: a trained run's masks."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from clevr_remv.contract import setup_logging

log = logging.getLogger("clevr_remv")


@click.command("predict")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True)
@click.option("--views", default="center", show_default=True, metavar="center|corners|all|LIST",
              help="Views to predict; the centre is always added (evaluate's MVR compares every view with it).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Predictions file (.h5) to write; never written over.")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="best: the weights with the best val oIoU; last: the latest.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Loader processes.")
@click.option("--other-dataset", is_flag=True,
              help="Predict on a dataset other than the one RUN was trained on (refused otherwise).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("-v", "--verbose", is_flag=True)
def command(dataset: Path, run: Path, split: str, views: str, out: Path, checkpoint: str, batch_size: int,
            device: str, workers: int, other_dataset: bool, no_progress: bool, verbose: bool) -> None:
    """Write RUN's masks for DATASET's SPLIT into the predictions file that `evaluate` scores.

    One mask per (pair, view) whose referent is visible in the view, streamed in batches; the file records
    its split and dataset, so `evaluate` refuses it elsewhere. Needs PyTorch: pip install 'clevr-remv[train]'.
    """
    setup_logging(verbose)
    from clevr_remv.model.runtime import require_torch
    from clevr_remv.outputs import check_output_file

    require_torch()
    check_output_file(out, (".h5", ".hdf5"), "--out")
    from tqdm import tqdm

    from clevr_remv.model.prediction import predict

    bars = []

    def progress(total: int):
        bars.append(tqdm(total=total, unit="mask", desc="predict", dynamic_ncols=True, disable=no_progress))
        return bars[-1].update

    try:
        done = predict(dataset, run, split, views, out, checkpoint=checkpoint, batch_size=batch_size,
                       device=device, workers=workers, other_dataset=other_dataset, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    click.echo(f"wrote {out}: {done['predictions']} masks of {split}, views {','.join(map(str, done['views']))}, "
               f"{checkpoint} checkpoint (step {done['step']})")
