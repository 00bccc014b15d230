"""One file per split (`OUT/train.h5`, `val.h5`, `test.h5`) for readers that want one path.

Each per-scene dataset of the split file is an HDF5 *virtual* dataset: a map from rows
of the split (scenes concatenated shard after shard, in manifest order) to the same
dataset in the shard files, so `h5py.File("out/train.h5")["images"][1234, 40]` reads one
chunk of one shard and no pixel is copied. The source paths are relative to the split
file (HDF5 looks them up next to it), so the directory can be moved or mounted
elsewhere. The small `refs/*` datasets are copied in, with `refs/scene` moved onto the
split's scene axis (shard offset + row).

Beware of one HDF5 habit: a virtual dataset whose source file is missing reads as
zeros instead of failing. `clevr-remv verify` checks that every source exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clevr_remv.store.atomic import atomic_path
from clevr_remv.store.columns import REF_ID, REF_SCENE, SCENES, read_column
from clevr_remv.store.shard import (
    AMODAL_MASKS,
    SCHEMA_VERSION,
    STRING,
    _attr_value,
    attrs_dict,
    file_schema,
    ref_layout,
    scene_layout,
)

SPLIT_FILE_SUFFIX = ".h5"
# Shard attributes that describe one shard, not the split: not copied to the split file.
_PER_SHARD_ATTRS = {"shard_index", "first_scene", "scene_count", "pair_count",
                    "dropped_referent_hidden", "dropped_related_hidden", "schema_version", "split"}


def split_file_path(root: Path, split: str) -> Path:
    """`root/<split>.h5`."""
    return Path(root) / f"{split}{SPLIT_FILE_SUFFIX}"


def write_split_file(root: Path, split: str, shard_names: Sequence[str],
                     views: int, height: int, width: int, *, into: Path | None = None,
                     read_from: Mapping[str, Path] | None = None) -> Path:
    """Write `root/<split>.h5` atomically over the shards `shard_names` (relative to root).

    `views`, `height` and `width` give the datasets their shapes when the split has no
    shard (a tiny dataset may have an empty test split); then the datasets are empty.

    For a change of several files at once (store/transaction.py): `into` writes the file
    there (a temporary renamed later) instead, and `read_from` maps shard names to the
    files to take refs and sizes from (the new shards, still under their temporaries);
    the virtual datasets always map the final shard names.
    """
    root = Path(root)
    counts, first_attrs, shard_refs, schemas, with_masks = [], {}, [], [], []
    for i, name in enumerate(shard_names):
        with h5py.File((read_from or {}).get(name, root / name), "r") as f:
            counts.append(int(f[SCENES].shape[0]))
            if i == 0:
                first_attrs = attrs_dict(f)
            schemas.append(file_schema(f))
            with_masks.append(AMODAL_MASKS in f)
            shard_refs.append(read_refs(f, views))
    # The split file offers what every shard holds (an old dataset resumed by a newer version mixes them).
    schema = min(schemas, default=SCHEMA_VERSION)
    offsets = np.cumsum([0, *counts])[:-1].astype(np.int64)
    refs = concatenate_refs(shard_refs, offsets, views, schema)
    path = split_file_path(root, split)
    with nullcontext(Path(into)) if into is not None else atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            layout = scene_layout(views, height, width, schema, bool(with_masks) and all(with_masks))
            for dataset, (shape, dtype) in layout.items():
                _virtual(f, dataset, shard_names, counts, shape, dtype)
            for dataset, (shape, dtype) in ref_layout(views, schema).items():
                f.create_dataset(dataset, data=refs[dataset], shape=refs[dataset].shape, dtype=dtype,
                                 track_times=False)
            _write_split_attrs(f, first_attrs, split, shard_names, offsets, int(sum(counts)), schema)
    return path


def read_refs(f: h5py.File, views: int) -> dict[str, np.ndarray]:
    """Every `refs/*` dataset of an open shard (or split file) of its schema version, strings decoded."""
    return {name: read_column(f, name) for name in ref_layout(views, file_schema(f))}


def concatenate_refs(parts: Sequence[dict[str, np.ndarray]], offsets: Sequence[int], views: int,
                     schema: int = SCHEMA_VERSION) -> dict[str, np.ndarray]:
    """The refs of a split from its shards' refs: `refs/scene` moved by each shard's first row."""
    out = {}
    for name, (shape, dtype) in ref_layout(views, schema).items():
        arrays = [p[name] + np.int32(o) if name == REF_SCENE else p[name] for p, o in zip(parts, offsets)]
        empty = np.zeros((0, *shape), dtype=object if dtype == STRING else dtype)
        out[name] = np.concatenate([empty, *arrays]).astype(object if dtype == STRING else dtype)
    return out


def _virtual(f: h5py.File, dataset: str, shard_names: Sequence[str], counts: Sequence[int],
             shape: tuple[int, ...], dtype: np.dtype) -> None:
    """One virtual dataset: rows [offset, offset + count) of the split map to shard `name`."""
    total = int(sum(counts))
    if total == 0:
        f.create_dataset(dataset, shape=(0, *shape), dtype=dtype, track_times=False)
        return
    layout = h5py.VirtualLayout(shape=(total, *shape), dtype=dtype)
    offset = 0
    for name, count in zip(shard_names, counts):
        layout[offset:offset + count] = h5py.VirtualSource(name, dataset, shape=(count, *shape))
        offset += count
    # What `create_virtual_dataset` does, without the creation time HDF5 records by default:
    # an unchanged dataset then gives a byte-identical split file (a re-run rewrites nothing).
    dcpl = layout._get_dcpl(f.filename)
    dcpl.set_obj_track_times(False)
    tid = h5py.h5t.py_create(np.dtype(dtype), logical=1)
    space = h5py.h5s.create_simple((total, *shape))
    parent, _, leaf = dataset.rpartition("/")
    group = f.require_group(parent) if parent else f
    h5py.h5d.create(group.id, name=leaf.encode(), tid=tid, space=space, dcpl=dcpl)


def _write_split_attrs(f: h5py.File, shard_attrs: dict[str, Any], split: str, shard_names: Sequence[str],
                       offsets: np.ndarray, total: int, schema: int = SCHEMA_VERSION) -> None:
    """The dataset-wide attributes of the first shard (config, rig, versions) and the split's own."""
    for key, value in shard_attrs.items():
        if key not in _PER_SHARD_ATTRS:
            f.attrs[key] = _attr_value(value)
    f.attrs["schema_version"] = schema
    f.attrs["split"] = split
    f.attrs.create("shards", np.array(list(shard_names), dtype=object), dtype=STRING)
    f.attrs["scene_offsets"] = offsets
    f.attrs["scene_count"] = total
    f.attrs["pair_count"] = int(f[REF_ID].shape[0])


def write_split_files(root: Path, splits: dict[str, Sequence[str]], views: int, height: int, width: int) -> list[Path]:
    """Write every split's file (split name -> its shard names, relative to `root`)."""
    return [write_split_file(root, split, names, views, height, width) for split, names in splits.items()]
