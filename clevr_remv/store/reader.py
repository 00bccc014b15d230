"""Reading CLEVR-Remv shards: the small API users call instead of raw h5py.

    from clevr_remv.store import DatasetReader

    ds = DatasetReader("out")
    for shard, row in ds.iter_scenes("test"):
        scene = shard.scene(row)                       # clevr_remv.scene.description.Scene
        centre = shard.view(row, scene.rig.centre_view)  # dict of numpy arrays
        pairs = [r for r in shard.refs() if r["scene"] == row]

Only the requested view is read from disk: the pixel datasets are chunked one view per
chunk, so `view()` decompresses exactly one image, one mask and one depth map.

A shard that is missing, truncated or fails a checksum while being read raises
`contract.DamagedShard` naming the file (never HDF5's bare "filter returned failure during
read"): `open_shard` and `reading_shard` do that for every reader of shards, and `ShardReader`
opened on a split file (`out/train.h5`) names the shard behind the row that failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clevr_remv.contract import DamagedShard, describe_read_error
from clevr_remv.scene.description import Scene
from clevr_remv.store.manifest import manifest_path, require_manifest
from clevr_remv.store.shard import attrs_dict


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


def scene_indices(f: h5py.File) -> np.ndarray:
    """Split-wide scene index of every row of an open shard.

    The pipeline records `first_scene`; shards written without it fall back to the
    scene descriptions (a few kB of JSON per scene).
    """
    rows = int(f["scenes"].shape[0])
    if "first_scene" in f.attrs:
        return int(f.attrs["first_scene"]) + np.arange(rows)
    return np.array([json.loads(s)["index"] for s in f["scenes"].asstr()[()]], dtype=np.int64)


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
        return reading_shard(path, self.root, what.format(row=local, view=view) if what else None)

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        """Number of scenes in the shard."""
        with self._reading():
            return int(self._file["scenes"].shape[0])

    @property
    def num_views(self) -> int:
        with self._reading():
            return int(self._file["masks"].shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        with self._reading():
            _, _, h, w = self._file["masks"].shape
        return int(h), int(w)

    @property
    def attrs(self) -> dict[str, Any]:
        """File attributes (schema version, split, shard index, config, rig ...)."""
        with self._reading():
            return attrs_dict(self._file)

    def scene(self, i: int) -> Scene:
        """The description of the scene in row `i`."""
        with self._reading("scenes[{row}]", i):
            text = self._file["scenes"].asstr()[i]
        return Scene.from_json(text)

    def view(self, i: int, v: int) -> dict[str, np.ndarray]:
        """Image (H,W,3) uint8, mask (H,W) uint8, depth (H,W) float32 and cameras of view `v`."""
        f = self._file
        with self._reading("view {view} of scene row {row}", i, v):
            return {
                "image": f["images"][i, v],
                "mask": f["masks"][i, v],
                "depth": f["depth"][i, v],
                "intrinsics": f["cameras/intrinsics"][i, v],
                "world_to_camera": f["cameras/world_to_camera"][i, v],
            }

    def visible_pixels(self, i: int) -> np.ndarray:
        """(V, 10) int32: visible pixel count of each object (column k-1 = object k) per view."""
        with self._reading("visible_pixels[{row}]", i):
            return self._file["visible_pixels"][i]

    def amodal_pixels(self, i: int) -> np.ndarray | None:
        """(V, 10) int32: pixels each object would cover with nothing in front of it (in-image), per
        view; None in datasets written before schema version 3."""
        with self._reading("amodal_pixels[{row}]", i):
            return self._file["amodal_pixels"][i] if "amodal_pixels" in self._file else None

    def amodal_masks(self, i: int, v: int) -> np.ndarray | None:
        """(10, H, W) bool amodal masks of view `v` (object k at k-1); None unless the dataset was
        rendered with --amodal-masks."""
        from clevr_remv.store.shard import unpack_masks

        with self._reading("amodal_masks[{row}, {view}]", i, v):
            if "amodal_masks" not in self._file:
                return None
            return unpack_masks(self._file["amodal_masks"][i, v], self._file["masks"].shape[-1])

    def amodal_masks_packed(self, i: int) -> np.ndarray | None:
        """(V, 10, H, ceil(W / 8)) uint8: every view's amodal masks as stored (bit-packed along W,
        `store.shard.unpack_masks`); None unless the dataset was rendered with --amodal-masks."""
        with self._reading("amodal_masks[{row}]", i):
            return self._file["amodal_masks"][i] if "amodal_masks" in self._file else None

    def refs(self) -> list[dict[str, Any]]:
        """All referring pairs of the shard, one dict per pair (`scene` is the row here)."""
        with self._reading("refs"):
            g = self._file["refs"]
            columns = {
                "id": g["id"][()].tolist(),
                "scene": g["scene"][()].tolist(),
                "object": g["object"][()].tolist(),
                "expression": g["expression"].asstr()[()].tolist(),
                "family": g["family"].asstr()[()].tolist(),
                "program": g["program"].asstr()[()].tolist(),
                "visible": list(g["visible"][()]),
            }
            if "visible_fraction" in g:  # schema 3: visible / amodal pixels of the referent per view
                columns["visible_fraction"] = list(g["visible_fraction"][()])
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

    def iter_scenes(self, split: str) -> Iterator[tuple[ShardReader, int]]:
        """(shard, row) for every scene of `split`; read what you need through the shard."""
        for shard in self.iter_shards(split):
            for row in range(len(shard)):
                yield shard, row
