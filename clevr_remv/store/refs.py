"""The referring pairs of a shard, a split file or a whole split, as one table of NumPy columns.

Every reader of the `refs/*` datasets (the loader, evaluation, the exports, the light-field scenes,
stats, show) takes them from here, so they all see the same columns with the same dtypes and one
value where a file lacks a column:

    from clevr_remv.store import DatasetReader, ShardReader

    refs = DatasetReader("out").ref_table("train")     # every pair of the split, `scene` = split row
    with ShardReader("out/train/shard-00000.h5") as shard:
        refs = shard.ref_table()                       # the shard's pairs, `scene` = row in the shard

A dataset rendered before schema version 3 has no `refs/visible_fraction`: its table's
`visible_fraction` is then NaN everywhere, the value the measured column also gives where the referent
has no pixel in the image, and `measured_fraction` is False. Code that must tell "not measured" apart
from "not in the image" (stats, `evaluate --by occlusion`) asks `measured_fraction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import h5py
import numpy as np

from clevr_remv.scene.vocabulary import MAX_OBJECTS
from clevr_remv.store.columns import (
    REF_DATASETS,
    REF_TARGET_COUNT,
    REF_TARGETS,
    REF_VISIBLE_FRACTION,
    REFS,
    read_column,
)

# Table column -> dataset: each column is named after its dataset in the refs group, and read in
# the order they are written (visible_fraction apart: it may be missing).
_OPTIONAL = (REF_VISIBLE_FRACTION, REF_TARGETS, REF_TARGET_COUNT)
_COLUMNS: dict[str, str] = {name.removeprefix(f"{REFS}/"): name for name in REF_DATASETS if name not in _OPTIONAL}
# The datasets a table needs; `refs/visible_fraction` (schema 3) and the targets (schema 4) are optional.
REQUIRED: tuple[str, ...] = tuple(_COLUMNS.values())
_DTYPES: dict[str, type] = {"id": np.int64, "scene": np.int32, "object": np.int16, "expression": object,
                            "family": object, "program": object, "visible": bool, "visible_fraction": np.float32,
                            "targets": bool, "target_count": np.int8}


@dataclass(frozen=True, eq=False)
class RefTable:
    """One row per referring pair (R) of a file or split; V views.

    `scene` is the row of the pair's scene in what was read: the shard's row for a shard, the
    split's row (shard offset + row) for a split file or `DatasetReader.ref_table`. The text columns
    are object arrays of `str`. `visible_fraction` is NaN where the referent has no pixel in the
    image, and everywhere when `measured_fraction` is False (a file written before schema 3).
    """

    id: np.ndarray  # (R,) int64 refs/id, unique within the split
    scene: np.ndarray  # (R,) int32 scene row
    object: np.ndarray  # (R,) int16 referent, 1-based like the masks
    expression: np.ndarray  # (R,) str, the sentence
    family: np.ndarray  # (R,) str, its template family
    program: np.ndarray  # (R,) str, JSON functional program
    visible: np.ndarray  # (R, V) bool, referent above the visibility threshold in that view
    visible_fraction: np.ndarray  # (R, V) float32, visible / amodal pixels of the referent (targets)
    targets: np.ndarray  # (R, N_max) bool, column k-1: object k is named (before schema 4: `object`)
    target_count: np.ndarray  # (R,) int8, how many objects the sentence names (0: none)
    measured_fraction: bool  # False: the file has no refs/visible_fraction, and the column is all NaN

    def __len__(self) -> int:
        return int(self.id.shape[0])

    @property
    def num_views(self) -> int:
        return int(self.visible.shape[1])

    @classmethod
    def empty(cls, views: int) -> RefTable:
        """No pair, V views (a split without shards); measured, since nothing is missing."""
        shapes = {"visible": (0, views), "visible_fraction": (0, views), "targets": (0, MAX_OBJECTS)}
        arrays = {name: np.zeros(shapes.get(name, 0), dtype) for name, dtype in _DTYPES.items()}
        return cls(**arrays, measured_fraction=True)

    def target_ids(self, row: int) -> tuple[int, ...]:
        """The 1-based objects pair `row` names, ascending (empty: no target)."""
        return tuple(int(k) + 1 for k in np.flatnonzero(self.targets[row]))


def read_ref_table(f: h5py.File) -> RefTable:
    """The pairs of an open shard or split file, every `refs/*` dataset read once and whole.

    A missing dataset raises h5py's KeyError (the callers' `reading_shard` names the file), except
    `refs/visible_fraction`, which files before schema 3 lack: NaN then, and `measured_fraction` False.
    """
    columns = {name: np.asarray(read_column(f, dataset), dtype=_DTYPES[name]) for name, dataset in _COLUMNS.items()}
    measured = REF_VISIBLE_FRACTION in f
    fraction = (read_column(f, REF_VISIBLE_FRACTION) if measured
                else np.full(columns["visible"].shape, np.nan, np.float32))
    if REF_TARGETS in f:
        targets = np.asarray(read_column(f, REF_TARGETS), bool)
    else:  # before schema 4 every sentence names exactly its `refs/object`
        targets = np.zeros((len(columns["object"]), MAX_OBJECTS), bool)
        targets[np.arange(len(targets)), columns["object"].astype(np.int64) - 1] = True
    return RefTable(**columns, visible_fraction=np.asarray(fraction, np.float32), targets=targets,
                    target_count=targets.sum(axis=1).astype(np.int8), measured_fraction=measured)


def concatenate(tables: Sequence[RefTable], offsets: Sequence[int] | None = None, views: int = 0) -> RefTable:
    """One table of several (a split's shards, in order); `offsets[k]` is added to table k's `scene`
    (the split row of shard k's first scene), and `views` gives the shape when there is no table.
    The result has measured fractions only if every part has."""
    if not tables:
        return RefTable.empty(views)
    shifts = [0] * len(tables) if offsets is None else [int(o) for o in offsets]
    arrays = {}
    for field in fields(RefTable):
        if field.name == "measured_fraction":
            continue
        parts = [getattr(t, field.name) for t in tables]
        if field.name == "scene":
            parts = [p + np.int32(shift) for p, shift in zip(parts, shifts)]
        arrays[field.name] = np.concatenate(parts).astype(_DTYPES[field.name], copy=False)
    return RefTable(**arrays, measured_fraction=all(t.measured_fraction for t in tables))
