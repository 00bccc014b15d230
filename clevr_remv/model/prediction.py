"""Masks from a trained run: for every (pair, view) of a split, streamed in batches into the
predictions file that `clevr-remv evaluate` scores (`evaluation.predictions.PredictionsWriter`).

The network sees the image at its training size; its logits are resized to the dataset's size
before the threshold, so the masks are scored at the ground truth's own resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from clevr_remv.data import rig_grid, select_views
from clevr_remv.evaluation.predictions import PredictionsWriter
from clevr_remv.model.checkpoint import BEST, LAST, load_checkpoint, read_config
from clevr_remv.model.network import ReferringUNet
from clevr_remv.model.runtime import require_torch, select_device
from clevr_remv.model.samples import TensorSamples
from clevr_remv.model.tokens import Tokenizer
from clevr_remv.scene.rig import centre_view
from clevr_remv.store import dataset_id, require_manifest

CHECKPOINTS = {"best": BEST, "last": LAST}


@torch.no_grad()
def predict_masks(model: ReferringUNet, batch: dict[str, Any], device: str) -> torch.Tensor:
    """The batch's masks (B, H, W) bool at the dataset's size (that of `batch["mask"]`), on the CPU."""
    logits = model(batch["image"].to(device), batch["tokens"].to(device))
    full = batch["mask"].shape[-2:]
    if logits.shape[-2:] != full:
        logits = F.interpolate(logits, size=full, mode="bilinear", align_corners=False)
    return (logits[:, 0] > 0).cpu()


def tokenizer_of(config: dict[str, Any]) -> Tokenizer:
    return Tokenizer(config["vocabulary"], config["max_words"], blind=config["text"] == "none")


def build_model(config: dict[str, Any]) -> ReferringUNet:
    return ReferringUNet(len(config["vocabulary"]), config["widths"])


def load_trained(run: Path, which: str, device: str) -> tuple[dict[str, Any], ReferringUNet, dict[str, Any]]:
    """RUN's config, its network with the `which` checkpoint's weights (eval mode), and that checkpoint."""
    config = read_config(run)
    if which not in CHECKPOINTS:
        raise ValueError(f"--checkpoint {which!r}: choose {' or '.join(CHECKPOINTS)}")
    path = Path(run) / CHECKPOINTS[which]
    if not path.exists():
        hint = " (no validation has run yet: use --checkpoint last)" if which == "best" else ""
        raise FileNotFoundError(f"{path}: this run has no {which} checkpoint yet{hint}")
    state = load_checkpoint(path, device)
    model = build_model(config).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return config, model, state


def predict(dataset: Path | str, run: Path | str, split: str, views: Any, out: Path | str, *,
            checkpoint: str = "best", batch_size: int = 32, device: str = "auto", workers: int = 0,
            other_dataset: bool = False, progress: Callable[[int], Callable[[int], None]] | None = None) -> dict[str, Any]:
    """Write RUN's masks for every (pair, view) of DATASET's `split` whose referent is visible in a
    chosen view (what `evaluate` scores), the centre view always among them (MVR compares each view
    with it), into the predictions file `out`, which records the split and the dataset."""
    require_torch()
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"--out {out} exists: predictions are never written over (choose another name "
                              "or remove it)")
    manifest = require_manifest(dataset)
    config = read_config(Path(run))
    if config["dataset_id"] != dataset_id(manifest) and not other_dataset:
        raise ValueError(f"{run} was trained on another dataset ({config['dataset']}, whose dataset.json differs "
                         f"from {dataset}'s); add --other-dataset to predict on this one anyway")
    if split not in manifest["splits"]:
        raise ValueError(f"--split {split!r}: {dataset} has splits {', '.join(manifest['splits'])}")
    grid = rig_grid(manifest)
    chosen = sorted(set(select_views(views, grid)) | {centre_view(grid)})
    device = select_device(device)
    config, model, state = load_trained(Path(run), checkpoint, device)
    samples = TensorSamples(dataset, split, chosen, tuple(config["size"]), tokenizer_of(config))
    height, width = manifest["config"]["height"], manifest["config"]["width"]
    loader = torch.utils.data.DataLoader(samples, batch_size=batch_size, num_workers=workers, shuffle=False)
    advance = progress(len(samples)) if progress is not None else (lambda n: None)
    with PredictionsWriter(out, height, width, dataset=dataset, split=split) as writer:
        for batch in loader:
            masks = predict_masks(model, batch, device)
            writer.add(batch["ref_id"].numpy(), batch["view"].numpy(), masks.numpy().astype(np.uint8))
            advance(len(masks))
    return {"predictions": len(samples), "views": chosen, "checkpoint": checkpoint, "step": state["step"]}
