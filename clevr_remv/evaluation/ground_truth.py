"""The ground truth an evaluation scores against: every pair of a split with its scene, referent,
visibility and visible fraction (the small refs datasets), and each (scene, view) mask read on demand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clevr_remv.data.selection import rig_grid
from clevr_remv.scene.rig import centre_view
from clevr_remv.store import DatasetReader
from clevr_remv.store.reader import open_shard, reading_shard


@dataclass(frozen=True)
class GroundTruth:
    """The referring pairs of one split, one entry per pair (R), and where their masks are."""

    root: Path
    split: str
    grid: int
    height: int
    width: int
    shard_paths: tuple[Path, ...]
    ids: np.ndarray  # (R,) int64 refs/id
    shard: np.ndarray  # (R,) index into shard_paths
    row: np.ndarray  # (R,) scene row in that shard
    object: np.ndarray  # (R,) referent, 1-based
    visible: np.ndarray  # (R, V) bool
    fraction: np.ndarray | None = None  # (R, V) float32 refs/visible_fraction; None in datasets without it

    @property
    def centre(self) -> int:
        return centre_view(self.grid)

    def scenes(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(shard, row, pair indices) for every scene with pairs, shard by shard."""
        for s in range(len(self.shard_paths)):
            in_shard = np.flatnonzero(self.shard == s)
            for row in np.unique(self.row[in_shard]):
                yield s, int(row), in_shard[self.row[in_shard] == row]


def load_ground_truth(root: Path | str, split: str) -> GroundTruth:
    """Index the pairs of `split` from the small `refs/*` datasets of its shards (no pixels read)."""
    reader = DatasetReader(root)
    reader.require_split(split)
    grid = rig_grid(reader.manifest)
    paths = tuple(reader.shard_paths(split))
    parts: dict[str, list[np.ndarray]] = {"ids": [], "shard": [], "row": [], "object": [], "visible": []}
    fractions: list[np.ndarray | None] = []
    height = width = 0
    for s, path in enumerate(paths):
        with open_shard(path, reader.root) as f:
            with reading_shard(path, reader.root, "refs"):
                _, views, height, width = f["masks"].shape
                g = f["refs"]
                parts["ids"].append(g["id"][()].astype(np.int64))
                parts["shard"].append(np.full(g["id"].shape[0], s, dtype=np.int64))
                parts["row"].append(g["scene"][()].astype(np.int64))
                parts["object"].append(g["object"][()].astype(np.int64))
                parts["visible"].append(g["visible"][()].astype(bool))
                fractions.append(g["visible_fraction"][()] if "visible_fraction" in g else None)
            if views != grid * grid:
                raise ValueError(f"{path}: {views} views, but the manifest says a {grid}x{grid} rig")
    if not parts["ids"] or sum(len(a) for a in parts["ids"]) == 0:
        raise ValueError(f"split {split!r} of {reader.root} has no referring pairs to evaluate")
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    fraction = None if any(f is None for f in fractions) else np.concatenate(fractions)
    return GroundTruth(root=reader.root, split=split, grid=grid, height=int(height), width=int(width),
                       shard_paths=paths, fraction=fraction, **arrays)
