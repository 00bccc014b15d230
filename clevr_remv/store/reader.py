"""Reading CLEVR-Remv shards: the small API users call instead of raw h5py.

    from clevr_remv.store import DatasetReader

    ds = DatasetReader("out")
    for shard, row in ds.iter_scenes("test"):
        scene = shard.scene(row)                       # clevr_remv.scene.description.Scene
        centre = shard.view(row, scene.rig.centre_view)  # dict of numpy arrays
        refs = shard.ref_table()                       # store.refs.RefTable, every pair of the shard
        pairs = np.flatnonzero(refs.scene == row)

Only the requested view is read from disk: the pixel datasets are chunked one view per
chunk, so `view()` decompresses exactly one image, one mask and one depth map (fewer with
`fields`). Code outside `store/` reads the shards through these methods and never names an
HDF5 dataset (store/columns.py does), so the file layout can change in one place.

A shard that is missing, truncated or fails a checksum while being read raises
`contract.DamagedShard` naming the file (never HDF5's bare "filter returned failure during
read"): `open_shard` and `reading_shard` do that for every reader of shards, and `ShardReader`
opened on a split file (`out/train.h5`) names the shard behind the row that failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clevr_remv.contract import DamagedShard, describe_read_error
from clevr_remv.scene.description import Scene
from clevr_remv.store.columns import (
    AMODAL_MASKS,
    AMODAL_PIXELS,
    DEPTH,
    IMAGES,
    INTRINSICS,
    MASKS,
    SCENES,
    VISIBLE_PIXELS,
    WORLD_TO_CAMERA,
)
from clevr_remv.store.manifest import manifest_path, require_manifest
from clevr_remv.store.refs import RefTable, concatenate, read_ref_table
from clevr_remv.store.shard import attrs_dict, unpack_masks

# What `ShardReader.view` calls the arrays of one view, and the dataset each comes from.
VIEW_FIELDS: dict[str, str] = {"image": IMAGES, "mask": MASKS, "depth": DEPTH, "intrinsics": INTRINSICS,
                               "world_to_camera": WORLD_TO_CAMERA}
# What `ShardReader.all_views` calls every view of a scene stacked (data.LightFieldScene's fields).
STACK_FIELDS: dict[str, str] = {"images": IMAGES, "masks": MASKS, "depth": DEPTH}


@contextmanager
def reading_shard(path: Path | str, root: Path | str | None = None, what: str | None = None) -> Iterator[None]:
    """Inside, HDF5's OSError or KeyError (a bad checksum, a truncated file, a dataset that is not
    there) becomes `DamagedShard` naming `path` (and `what` was being read, e.g. "images[1, 4]").

    Keep the block to the reads of that one file: an OSError of anything else inside it would
    be blamed on the shard. `root` is the dataset directory for the `clevr-remv verify` hint
    (by default the folder above `train/`, `val/` or `test/`).
    """
    try:
        yield
    except (DamagedShard, PermissionError):  # already named; not damage (verify would not help)
        raise
    except (OSError, KeyError) as error:
        detail = describe_read_error(error)
        raise DamagedShard(path, f"{what}: {detail}" if what else detail, root) from error


def open_shard(path: Path | str, root: Path | str | None = None) -> h5py.File:
    """`h5py.File(path, "r")`, or `DamagedShard` when the file is missing or not readable HDF5."""
    path = Path(path)
    if not path.is_file():
        raise DamagedShard(path, "no such file" if not path.exists() else "not a file", root)
    with reading_shard(path, root):
        return h5py.File(path, "r")


def require_shard_files(paths: list[Path], root: Path | str | None = None) -> None:
    """`DamagedShard` for the first of `paths` that is not a file: a command checks its shards
    before it writes anything, rather than failing half-way."""
    for path in paths:
        if not Path(path).is_file():
            open_shard(path, root)


class ShardReader:
    """One open shard file (or split file). Use as a context manager, or call `close()`.

    A read that fails raises `DamagedShard` naming the shard; on a split file, the shard
    behind the row (a missing one too, which HDF5 would silently read as zeros).
    """

    def __init__(self, path: Path | str, root: Path | str | None = None) -> None:
        self.path = Path(path)
        self.root = root
        self._file = open_shard(self.path, root)
        # A split file's rows map onto its shards (`shards` relative to it, `scene_offsets`).
        self._sources: list[Path] = []
        self._offsets = np.zeros(0, dtype=np.int64)
        self._label: tuple[str | None] | None = None  # set by reading(): one label for a block of reads
        try:
            with self._reading():
                attrs = self._file.attrs
                if "shards" in attrs and "scene_offsets" in attrs:
                    self._sources = [self.path.parent / name for name in attrs_dict(self._file)["shards"]]
                    self._offsets = np.asarray(attrs["scene_offsets"], dtype=np.int64)
        except BaseException:
            self._file.close()
            raise

    def _reading(self, what: str | None = None, row: int | None = None, view: int | None = None):
        """`reading_shard` for the file that holds scene row `row`: this one, or the split file's
        shard behind it, whose own row number then fills `{row}` in `what` (as `{view}` does view)."""
        if not self._file.id.valid:  # HDF5 would say "invalid identifier", which reads like damage
            raise ValueError(f"{self.path} was closed before this read: a ShardReader from iter_shards or "
                             "iter_scenes closes when the loop moves on or the iterator is dropped "
                             "(next(reader.iter_shards(...)) drops it at once); read inside the loop, or "
                             "open ShardReader(path) yourself")
        path, local = self.path, row
        if isinstance(row, (int, np.integer)) and row >= 0 and self._sources:
            k = int(np.searchsorted(self._offsets, row, side="right")) - 1
            if 0 <= k < len(self._sources):
                path, local = self._sources[k], row - int(self._offsets[k])
                if not path.is_file():  # a virtual dataset would read it as zeros
                    open_shard(path, self.root)
        if self._label is not None:
            return reading_shard(path, self.root, self._label[0])
        return reading_shard(path, self.root, what.format(row=local, view=view) if what else None)

    @contextmanager
    def reading(self, what: str | None = None) -> Iterator[None]:
        """Inside, a damaged read names `what` (e.g. "scenes and refs"; None: the file alone) instead
        of each method's own label: a consumer that reads several things as one step reports that
        step, whichever read failed."""
        outer, self._label = self._label, (what,)
        try:
            with self._reading():
                yield
        finally:
            self._label = outer

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        """Number of scenes in the shard."""
        with self._reading():
            return int(self._file[SCENES].shape[0])

    @property
    def num_views(self) -> int:
        with self._reading():
            return int(self._file[MASKS].shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.shape[2:]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(S, V, H, W): scenes, views, height and width, from the masks' shape (nothing read but that)."""
        with self._reading():
            s, v, h, w = self._file[MASKS].shape
        return int(s), int(v), int(h), int(w)

    @property
    def attrs(self) -> dict[str, Any]:
        """File attributes (schema version, split, shard index, config, rig ...)."""
        with self._reading():
            return attrs_dict(self._file)

    def scene(self, i: int) -> Scene:
        """The description of the scene in row `i`."""
        with self._reading("scenes[{row}]", i):
            text = self._file[SCENES].asstr()[i]
        return Scene.from_json(text)

    def scene_texts(self) -> np.ndarray:
        """(S,) str: every row's scene description as stored (JSON), in one read."""
        with self._reading("scenes"):
            return self._file[SCENES].asstr()[()]

    def scene_indices(self) -> np.ndarray:
        """(S,) int: the split-wide index of every row's scene. The pipeline records `first_scene`;
        shards written without it fall back to the scene descriptions (a few kB of JSON per scene)."""
        with self._reading("scenes"):
            rows = int(self._file[SCENES].shape[0])
            if "first_scene" in self._file.attrs:
                return int(self._file.attrs["first_scene"]) + np.arange(rows)
            return np.array([json.loads(s)["index"] for s in self._file[SCENES].asstr()[()]], dtype=np.int64)

    def view(self, i: int, v: int, fields: Sequence[str] = tuple(VIEW_FIELDS)) -> dict[str, np.ndarray]:
        """Image (H,W,3) uint8, mask (H,W) uint8, depth (H,W) float32 and cameras of view `v`;
        `fields` (keys of VIEW_FIELDS) reads only those, one chunk each."""
        datasets = [(name, VIEW_FIELDS[name]) for name in fields]
        f = self._file
        with self._reading("view {view} of scene row {row}", i, v):
            return {name: f[dataset][i, v] for name, dataset in datasets}

    def mask(self, i: int, v: int) -> np.ndarray:
        """(H, W) uint8 object ids of view `v` of row `i`: one chunk, for code that needs masks only."""
        with self._reading("masks[{row}, {view}]", i, v):
            return self._file[MASKS][i, v]

    def all_views(self, i: int, field: str) -> np.ndarray:
        """Every view of row `i` stacked, of one of STACK_FIELDS: "images" (V, H, W, 3) uint8,
        "masks" (V, H, W) uint8 or "depth" (V, H, W) float32; a whole light field, V chunks."""
        dataset = STACK_FIELDS[field]
        with self._reading(f"{dataset} of scene row {{row}}", i):
            return self._file[dataset][i]

    def visible_pixels(self, i: int) -> np.ndarray:
        """(V, 10) int32: visible pixel count of each object (column k-1 = object k) per view."""
        with self._reading("visible_pixels[{row}]", i):
            return self._file[VISIBLE_PIXELS][i]

    def amodal_pixels(self, i: int) -> np.ndarray | None:
        """(V, 10) int32: pixels each object would cover with nothing in front of it (in-image), per
        view; None in datasets written before schema version 3."""
        with self._reading("amodal_pixels[{row}]", i):
            return self._file[AMODAL_PIXELS][i] if AMODAL_PIXELS in self._file else None

    @property
    def has_amodal_masks(self) -> bool:
        """Whether the dataset was rendered with --amodal-masks."""
        with self._reading():
            return AMODAL_MASKS in self._file

    def amodal_masks(self, i: int, v: int) -> np.ndarray | None:
        """(10, H, W) bool amodal masks of view `v` (object k at k-1); None unless the dataset was
        rendered with --amodal-masks."""
        with self._reading("amodal_masks[{row}, {view}]", i, v):
            if AMODAL_MASKS not in self._file:
                return None
            return unpack_masks(self._file[AMODAL_MASKS][i, v], self._file[MASKS].shape[-1])

    def amodal_masks_packed(self, i: int) -> np.ndarray | None:
        """(V, 10, H, ceil(W / 8)) uint8: every view's amodal masks as stored (bit-packed along W,
        `store.shard.unpack_masks`); None unless the dataset was rendered with --amodal-masks."""
        with self._reading("amodal_masks[{row}]", i):
            return self._file[AMODAL_MASKS][i] if AMODAL_MASKS in self._file else None

    def missing(self, names: Sequence[str]) -> list[str]:
        """Those of the datasets `names` (store.columns) that the file lacks, in order: a reader that
        needs them refuses an incomplete file in one line before reading anything."""
        with self._reading():
            return [name for name in names if name not in self._file]

    def ref_table(self) -> RefTable:
        """Every referring pair of the file, one column per `refs/*` dataset (store/refs.py);
        `scene` is the row here (the split's row in a split file)."""
        with self._reading("refs"):
            return read_ref_table(self._file)

    def refs(self) -> list[dict[str, Any]]:
        """All referring pairs of the shard, one dict per pair (`scene` is the row here), with
        `visible_fraction` only where the file measured it (schema 3) and `targets`, the 1-based objects
        the sentence names (one before schema 4); `ref_table()` is the same as columns."""
        table = self.ref_table()
        columns = {
            "id": table.id.tolist(),
            "scene": table.scene.tolist(),
            "object": table.object.tolist(),
            "expression": table.expression.tolist(),
            "family": table.family.tolist(),
            "program": table.program.tolist(),
            "visible": list(table.visible),
            "targets": [table.target_ids(k) for k in range(len(table))],
        }
        if table.measured_fraction:
            columns["visible_fraction"] = list(table.visible_fraction)
        return [dict(zip(columns, values)) for values in zip(*columns.values())]


class UnknownSplit(KeyError, ValueError):
    """A split the manifest does not list: a KeyError to code that looks splits up, a ValueError
    (a one-line user error) to the commands."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def require_split(manifest: dict[str, Any], root: Path, split: str) -> None:
    """Raise UnknownSplit, naming the splits there are, unless the manifest of `root` lists `split`."""
    have = list(manifest.get("splits", {}))
    if split not in have:
        raise UnknownSplit(f"split {split!r} not in {manifest_path(root)} (have {', '.join(have)})")


class DatasetReader:
    """A whole output directory, found through its manifest `dataset.json`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.manifest: dict[str, Any] = require_manifest(self.root)

    @property
    def splits(self) -> list[str]:
        return list(self.manifest.get("splits", {}))

    def require_split(self, split: str) -> None:
        require_split(self.manifest, self.root, split)

    def shard_paths(self, split: str) -> list[Path]:
        """The shard files of `split`, in manifest order."""
        self.require_split(split)
        return [self.root / name for name in self.manifest["splits"][split].get("shards", [])]

    def iter_shards(self, split: str) -> Iterator[ShardReader]:
        """Open each shard of `split` in turn; each is closed when the next one is opened, or when
        the iterator is dropped, so read a shard inside the loop (or open `ShardReader(path)`)."""
        for path in self.shard_paths(split):
            with ShardReader(path, self.root) as shard:
                yield shard

    def ref_table(self, split: str) -> RefTable:
        """Every referring pair of `split`: its shards' tables in manifest order, with `scene` the
        split's row (shard offset + row), as in the split file `<split>.h5`."""
        tables, offsets, rows = [], [], 0
        for shard in self.iter_shards(split):
            tables.append(shard.ref_table())
            offsets.append(rows)
            rows += len(shard)
        return concatenate(tables, offsets, int(self.manifest.get("views", 0)))

    def iter_scenes(self, split: str) -> Iterator[tuple[ShardReader, int]]:
        """(shard, row) for every scene of `split`; read what you need through the shard."""
        for shard in self.iter_shards(split):
            for row in range(len(shard)):
                yield shard, row
