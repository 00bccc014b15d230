"""The ground truth an evaluation scores against: every pair of a split with its scene, target set,
visibility and visible fraction (the small refs datasets), and each (scene, view) mask read on demand.

A pair's ground-truth mask in a view is the union of the objects its sentence names (`refs/targets`,
schema 4; before it, `refs/object` alone): all False for a no-target sentence of `--targets any`, and
`instance mask == refs/object`, bit for bit as before, for the single target of the published data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clevr_remv.data.selection import rig_grid
from clevr_remv.scene.rig import centre_view
from clevr_remv.store import DatasetReader
from clevr_remv.store.reader import ShardReader
from clevr_remv.store.refs import RefTable, concatenate


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
    object: np.ndarray  # (R,) referent, 1-based; 0 when the sentence names several objects or none
    visible: np.ndarray  # (R, V) bool: every target visible there (always True for no target)
    fraction: np.ndarray  # (R, V) float32 visible fraction of the targets' union; NaN where not measured
    measured_fraction: bool = True  # False: some shard predates it (schema 2), so `evaluate --by occlusion` cannot bin
    targets: np.ndarray | None = None  # (R, N_max) bool, column k-1: object k is named; None: `object` alone
    program: np.ndarray | None = None  # (R,) str, the JSON program of each sentence (`--by hops` counts its hops)

    @property
    def centre(self) -> int:
        return centre_view(self.grid)

    @property
    def target_count(self) -> np.ndarray:
        """(R,) how many objects each sentence names (0: none)."""
        if self.targets is None:
            return (self.object > 0).astype(np.int64)
        return self.targets.sum(axis=1).astype(np.int64)

    @property
    def generalised(self) -> bool:
        """Whether some sentence names several objects or none: the report then adds gIoU, cIoU, N-acc and
        T-acc, and P@K runs over the targeted pairs. False keeps the published figures and output."""
        return bool(np.any(self.target_count != 1))

    def target_ids(self, pair: int) -> tuple[int, ...]:
        """The 1-based objects pair `pair` names, ascending (empty: no target)."""
        if self.targets is None:
            return (int(self.object[pair]),)
        return tuple(int(k) + 1 for k in np.flatnonzero(self.targets[pair]))

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
    tables: list[RefTable] = []
    height = width = 0
    for path in paths:
        with ShardReader(path, reader.root) as shard:
            with shard.reading("refs"):
                _, views, height, width = shard.shape
                tables.append(shard.ref_table())
            if views != grid * grid:
                raise ValueError(f"{path}: {views} views, but the manifest says a {grid}x{grid} rig")
    refs = concatenate(tables)
    if len(refs) == 0:
        raise ValueError(f"split {split!r} of {reader.root} has no referring pairs to evaluate")
    shard = np.repeat(np.arange(len(tables), dtype=np.int64), [len(t) for t in tables])
    return GroundTruth(root=reader.root, split=split, grid=grid, height=int(height), width=int(width),
                       shard_paths=paths, ids=refs.id.astype(np.int64), shard=shard, row=refs.scene.astype(np.int64),
                       object=refs.object.astype(np.int64), visible=refs.visible, fraction=refs.visible_fraction,
                       measured_fraction=refs.measured_fraction, targets=refs.targets.astype(bool),
                       program=refs.program)
