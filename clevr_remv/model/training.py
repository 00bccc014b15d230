"""The training loop of the reference model, built to be stopped at any moment and resumed exactly.

Everything a step depends on is a function of the seed and the step number: the network's initial
weights come from `torch.manual_seed(seed)`, epoch e visits the training samples in the order
`default_rng([seed, e]).permutation(n)` (the last incomplete batch dropped, so every step has the same
shape), and there is no augmentation and no dropout. A checkpoint is therefore just the weights, the
optimiser's moments and the step; a run resumed from one repeats, on the CPU, the uninterrupted run
bit for bit (with the same --threads: the number of threads may change how a sum is split).

SIGINT and SIGTERM are taken between steps: the step in flight finishes, `last.pt` is written, and
the command exits 130 / 143 (a second signal stops at once, leaving the previous checkpoint). A kill -9
loses at most `save_every` steps.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from clevr_remv.contract import Terminated
from clevr_remv.data import RefDataset
from clevr_remv.evaluation.metrics import mean_iou, overall_iou
from clevr_remv.model.checkpoint import (
    BEST,
    FORMAT,
    LAST,
    append_log,
    load_checkpoint,
    open_run,
    save_checkpoint,
    trim_log,
)
from clevr_remv.model.network import WIDTHS, ReferringUNet, parameter_count
from clevr_remv.model.prediction import build_model, predict_masks, tokenizer_of
from clevr_remv.model.runtime import make_deterministic, peak_memory_mb, select_device
from clevr_remv.model.samples import TensorSamples
from clevr_remv.model.tokens import build_vocabulary, words
from clevr_remv.store import dataset_id, require_manifest

log = logging.getLogger("clevr_remv")

TEXT_MODES = ("sentence", "none")  # --text none: the text-blind control, every sentence blanked
DEFAULT_EPOCHS = 10
LOG_EVERY = 20  # steps per `train` line of the log (a tenth of the run where that is fewer)
WEIGHT_DECAY = 1e-4
POSITIVE_WEIGHT = 5.0  # of the referent's pixels in the cross-entropy (segmentation_loss)


@dataclass(frozen=True)
class TrainOptions:
    """`clevr-remv train`'s options. The first group is the run's identity (kept in config.json; a
    resumed run must repeat it); the second may change between resumes."""

    views: str = "center"
    epochs: int | None = None  # default DEFAULT_EPOCHS when steps is not given either
    steps: int | None = None
    batch_size: int = 16
    size: tuple[int, int] | None = None  # (width, height); None: the dataset's
    seed: int = 0
    text: str = "sentence"
    lr: float = 2e-3
    val_every: int | None = None  # steps; None: once per epoch
    widths: tuple[int, ...] = WIDTHS
    # -- may change on resume
    device: str = "auto"
    workers: int = 0
    save_every: int = 100
    threads: int | None = None


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch `epoch` visits the n training samples: a function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def learning_rate(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 5 % of the steps (at most 200), then a cosine down to 5 % of the peak."""
    warm = max(1, min(200, total // 20))
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the referent's pixels weighted POSITIVE_WEIGHT times, plus the soft Dice loss.

    The referent covers 1-3 % of the image: plain cross-entropy settles on "background everywhere",
    and Dice alone stalls there too (its gradient vanishes with the sigmoid's). Weighted, the
    cross-entropy first marks every object, then the sentence has to choose among them."""
    weight = torch.tensor(POSITIVE_WEIGHT, device=logits.device, dtype=logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1)
    return bce + dice.mean()


class StopRequest:
    """SIGINT / SIGTERM noted, to act on between steps; a second one stops at once."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def exception(self) -> BaseException:
        return KeyboardInterrupt() if self.signal == signal.SIGINT else Terminated()

    def _note(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
        self.signal = signum
        log.warning("stopping after this step (%s); signal again to stop at once",
                    signal.Signals(signum).name)


@contextmanager
def stop_between_steps() -> Iterator[StopRequest]:
    request = StopRequest()
    previous = {sig: signal.signal(sig, request._note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def validate(model: ReferringUNet, samples: TensorSamples, device: str, batch_size: int,
             workers: int) -> tuple[float, float]:
    """Overall IoU (sum of intersections / sum of unions) and mean IoU on `samples`, at the dataset's size,
    computed by evaluation.metrics, as `evaluate` computes them (0.0 for both without samples)."""
    model.eval()
    inters: list[int] = []
    unions: list[int] = []
    loader = torch.utils.data.DataLoader(samples, batch_size=batch_size, num_workers=workers, shuffle=False)
    for batch in loader:
        predicted, truth = predict_masks(model, batch, device), batch["mask"]
        inters.extend((predicted & truth).sum(dim=(1, 2)).tolist())
        unions.extend((predicted | truth).sum(dim=(1, 2)).tolist())
    model.train()
    if not inters:
        return 0.0, 0.0
    return overall_iou(inters, unions), mean_iou(inters, unions)


def run_config(dataset: Path, options: TrainOptions, train_refs: RefDataset, size: tuple[int, int],
               manifest: dict[str, Any]) -> dict[str, Any]:
    """config.json: the identity of the run (checkpoint.IDENTITY) and what a reader needs to redo it."""
    import clevr_remv

    settings = asdict(options)
    for key in ("device", "workers", "save_every", "threads"):
        settings.pop(key)
    settings.update(size=list(size), widths=list(options.widths))
    return {"format": FORMAT, "generator_version": clevr_remv.__version__, "torch_version": torch.__version__,
            "dataset": str(dataset), "dataset_id": dataset_id(manifest), **settings,
            "vocabulary": build_vocabulary(train_refs.sentences),
            "max_words": max((len(words(s)) for s in train_refs.sentences), default=1)}


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`--size WxH` -> (W, H); None stays None (the dataset's size)."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: give WIDTHxHEIGHT, e.g. 96x64") from None
    if w < 8 or h < 8:
        raise ValueError(f"--size {text!r}: at least 8x8 pixels")
    return w, h


def train(dataset: Path | str, run: Path | str, options: TrainOptions, progress: bool = True) -> dict[str, Any]:
    """Train (or resume training) the reference model on DATASET's train split into RUN; returns the
    `end` record of the log."""
    from tqdm import tqdm

    dataset, run = Path(dataset), Path(run)
    if options.text not in TEXT_MODES:
        raise ValueError(f"--text {options.text!r}: choose {' or '.join(TEXT_MODES)}")
    if options.epochs is not None and options.steps is not None:
        raise ValueError("--epochs and --steps exclude each other: give one")
    for name in ("epochs", "steps", "batch_size", "val_every", "save_every", "threads"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} {value}: must be at least 1")
    manifest = require_manifest(dataset)
    device = select_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    train_refs = RefDataset(dataset, "train", views=options.views)
    size = options.size or (manifest["config"]["width"], manifest["config"]["height"])
    config = open_run(run, run_config(dataset, options, train_refs, size, manifest))
    tokenizer = tokenizer_of(config)
    samples = TensorSamples(dataset, "train", options.views, size, tokenizer)
    val = TensorSamples(dataset, "val", "center", size, tokenizer)
    batch = options.batch_size
    per_epoch = len(samples) // batch
    if per_epoch < 1:
        raise ValueError(f"the train split has {len(samples)} samples in views {options.views!r}, fewer than "
                         f"--batch-size {batch}")
    total = options.steps or per_epoch * (options.epochs or DEFAULT_EPOCHS)
    val_every = options.val_every or per_epoch
    log_every = max(1, min(LOG_EVERY, total // 10))  # a short run logs often enough to show its loss fall

    make_deterministic(options.seed, device)
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=WEIGHT_DECAY)
    step, elapsed, best = 0, 0.0, None
    if (run / LAST).exists():
        state = load_checkpoint(run / LAST, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, best = state["step"], state["elapsed_s"], state["best"]
        log.info("resuming %s at step %d of %d", run, step, total)
    trim_log(run, step)
    log.info("train: %d samples (views %s), %d steps of %d (%d per epoch), %dx%d px, device %s, %d threads, "
             "%s parameters, text %s; run %s", len(samples), options.views, total, batch, per_epoch, size[0],
             size[1], device, torch.get_num_threads(), f"{parameter_count(model):,}", options.text, run)
    if step >= total:
        log.info("%s is complete (step %d of %d): nothing to do", run, step, total)
        return _end_record(run, step, total, per_epoch, elapsed, best, device)

    def checkpoint() -> None:
        save_checkpoint(run / LAST, {"format": FORMAT, "step": step, "model": model.state_dict(),
                                     "optimizer": optimizer.state_dict(), "elapsed_s": elapsed, "best": best})

    model.train()
    window = {"loss": 0.0, "steps": 0, "wait": 0.0, "time": 0.0}
    bar = tqdm(total=total, initial=step, unit="step", desc="train", dynamic_ncols=True, disable=not progress)
    try:
        with stop_between_steps() as stop:
            while step < total:
                epoch, position = divmod(step, per_epoch)
                order = epoch_order(options.seed, epoch, len(samples))
                batches = [order[i * batch:(i + 1) * batch].tolist() for i in range(position, per_epoch)]
                loader = torch.utils.data.DataLoader(samples, batch_sampler=batches, num_workers=options.workers)
                started = time.perf_counter()
                for item in loader:
                    waited = time.perf_counter() - started
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate(step, total, options.lr)
                    logits = model(item["image"].to(device), item["tokens"].to(device))
                    loss = segmentation_loss(logits, item["target"].to(device))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    spent = time.perf_counter() - started
                    elapsed += spent
                    window.update(loss=window["loss"] + loss.item(), steps=window["steps"] + 1,
                                  wait=window["wait"] + waited, time=window["time"] + spent)
                    bar.update(1)
                    if step % log_every == 0 or step == total:
                        rate, share = window["steps"] * batch / window["time"], window["wait"] / window["time"]
                        append_log(run, {"event": "train", "step": step, "epoch": epoch,
                                         "loss": round(window["loss"] / window["steps"], 5),
                                         "lr": learning_rate(step - 1, total, options.lr),
                                         "samples_per_s": round(rate, 2), "loader_share": round(share, 4),
                                         "elapsed_s": round(elapsed, 1)})
                        bar.set_postfix(loss=f"{window['loss'] / window['steps']:.3f}", refresh=False)
                        window = {"loss": 0.0, "steps": 0, "wait": 0.0, "time": 0.0}
                    if step % val_every == 0 or step == total:
                        oiou, miou = validate(model, val, device, max(batch, 32), options.workers)
                        append_log(run, {"event": "val", "step": step, "epoch": epoch, "val_oiou": round(oiou, 5),
                                         "val_miou": round(miou, 5), "elapsed_s": round(elapsed, 1)})
                        log.info("step %d: val oIoU %.4f, mIoU %.4f", step, oiou, miou)
                        if best is None or oiou > best["val_oiou"]:
                            best = {"step": step, "val_oiou": oiou, "val_miou": miou}
                            save_checkpoint(run / BEST, {"format": FORMAT, "step": step, "model": model.state_dict(),
                                                         "val_oiou": oiou, "val_miou": miou})
                        checkpoint()
                    elif step % options.save_every == 0:
                        checkpoint()
                    if stop.signal is not None:
                        checkpoint()
                        log.info("saved %s at step %d; the same command resumes", run / LAST, step)
                        raise stop.exception()
                    if step >= total:
                        break
                    started = time.perf_counter()
    finally:
        bar.close()
    return _end_record(run, step, total, per_epoch, elapsed, best, device)


def _end_record(run: Path, step: int, total: int, per_epoch: int, elapsed: float, best: dict[str, Any] | None,
                device: str) -> dict[str, Any]:
    """The log's closing line (written once, when the run reaches its last step)."""
    from clevr_remv.model.checkpoint import read_log

    done = [r for r in read_log(run) if r.get("event") == "end"]
    if done:
        return done[-1]
    trains = [r for r in read_log(run) if r.get("event") == "train"]
    record = {"event": "end", "step": step, "steps": total, "epochs": round(step / per_epoch, 3),
              "elapsed_s": round(elapsed, 1),
              "samples_per_s": round(float(np.mean([r["samples_per_s"] for r in trains])), 2) if trains else None,
              "loader_share": round(float(np.mean([r["loader_share"] for r in trains])), 4) if trains else None,
              "peak_memory_mb": round(peak_memory_mb(device), 1), "device": device, "best": best}
    append_log(run, record)
    return record
