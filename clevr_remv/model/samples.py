"""RefDataset's (pair, view) samples as the network's tensors: the image scaled to [0, 1] and resized
to the training size, the sentence as word ids, the referent's mask at that size (the training
target) and, for scoring, at the dataset's own size.

No augmentation: a horizontal flip would swap "left" and "right", a crop could cut the object the
relation names, and a sample is then the same tensor in every epoch (resuming needs nothing but the
order, which training.py derives from the seed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from clevr_remv.data import RefDataset
from clevr_remv.model.tokens import Tokenizer


def resize_image(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) float in [0, 1] at size (w, h); area-averaged when smaller."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(torch.float32) / 255.0
    w, h = size
    if x.shape[1:] == (h, w):
        return x
    mode = "area" if h <= x.shape[1] and w <= x.shape[2] else "bilinear"
    extra = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x[None], size=(h, w), mode=mode, **extra)[0]


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) bool -> (1, h, w) float 0/1 at size (w, h), nearest pixel."""
    x = torch.from_numpy(np.ascontiguousarray(mask)).to(torch.float32)[None]
    w, h = size
    if x.shape[1:] == (h, w):
        return x
    return F.interpolate(x[None], size=(h, w), mode="nearest")[0]


class TensorSamples(torch.utils.data.Dataset):
    """The samples of `RefDataset(root, split, views)` as dicts of tensors:
    image (3, h, w), tokens (L,), target (1, h, w), and mask (H, W) bool at the dataset's size,
    ref_id and view (what a predictions file records)."""

    def __init__(self, root: Path | str, split: str, views: Any, size: tuple[int, int],
                 tokenizer: Tokenizer, visible_only: bool = True) -> None:
        self.refs = RefDataset(root, split, views=views, visible_only=visible_only)
        self.size, self.tokenizer = size, tokenizer

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.refs[i]
        return {"image": resize_image(s["image"], self.size),
                "tokens": torch.from_numpy(self.tokenizer(s["sentence"])),
                "target": resize_mask(s["mask"], self.size),
                "mask": torch.from_numpy(s["mask"]),
                "ref_id": s["ref_id"], "view": s["view"]}
