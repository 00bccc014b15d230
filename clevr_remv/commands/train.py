"""`clevr-remv train DIR --out RUN`: train the reference model (clevr_remv/model/) on DIR's train split."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from clevr_remv.contract import setup_logging

log = logging.getLogger("clevr_remv")


@click.command("train")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--out", "run", type=click.Path(path_type=Path), required=True,
              help="Run folder: config.json, log.jsonl, last.pt, best.pt. An existing run resumes.")
@click.option("--views", default="center", show_default=True, metavar="center|all|corners|LIST",
              help="Which views of each training pair are samples (the thesis trains on the centre view).")
@click.option("--epochs", type=int, default=None, help="Passes over the training samples [default: 10].")
@click.option("--steps", type=int, default=None, help="Optimiser steps instead of --epochs.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--size", default=None, metavar="WxH", help="Input resolution [default: the dataset's].")
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Peak learning rate (AdamW, cosine).")
@click.option("--text", type=click.Choice(["sentence", "none"]), default="sentence", show_default=True,
              help="none: the text-blind control, the same network with every sentence blanked.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Initial weights and sample order: same seed, same run (on the CPU, bit for bit).")
@click.option("--val-every", type=int, default=None, metavar="STEPS",
              help="Validate on val's centre view every STEPS steps [default: once per epoch].")
@click.option("--save-every", type=int, default=100, show_default=True, metavar="STEPS",
              help="Write last.pt every STEPS steps (what a kill -9 can lose).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA where PyTorch sees a GPU, else the CPU; cuda without a GPU is an error.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Loader processes (0: load in the training process).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch [default: torch's, one per core]. An exact repeat needs the same.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
@click.option("-v", "--verbose", is_flag=True)
def command(dataset: Path, run: Path, views: str, epochs: int | None, steps: int | None, batch_size: int,
            size: str | None, lr: float, text: str, seed: int, val_every: int | None, save_every: int, device: str,
            workers: int, threads: int | None, no_progress: bool, verbose: bool) -> None:
    """Train the reference model on DATASET's train split into RUN (resumable: the same command goes on).

    A small U-Net modulated by the sentence (FiLM), trained from scratch; validates on val's centre view,
    keeps the best and the last checkpoint and logs loss, val oIoU/mIoU, samples per second and the
    loader's share of each step in RUN/log.jsonl. Needs PyTorch: pip install 'clevr-remv[train]'.

    Exit status: 0 done, 1 an error, 130 / 143 stopped by SIGINT / SIGTERM after saving last.pt
    (the same command resumes; on the CPU it ends with the weights an uninterrupted run has).
    """
    setup_logging(verbose)
    from clevr_remv.model.runtime import require_torch

    require_torch()
    from clevr_remv.model.training import TrainOptions, parse_size, train

    options = TrainOptions(views=views, epochs=epochs, steps=steps, batch_size=batch_size, size=parse_size(size),
                           seed=seed, text=text, lr=lr, val_every=val_every, device=device, workers=workers,
                           save_every=save_every, threads=threads)
    end = train(dataset, run, options, progress=not no_progress)
    best = end.get("best") or {}
    click.echo(f"{run}: step {end['step']} of {end['steps']}; best val oIoU {best.get('val_oiou', float('nan')):.4f} "
               f"at step {best.get('step')}; {end['elapsed_s']:.0f} s of training")
