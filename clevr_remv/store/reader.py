"""Reading CLEVR-Remv shards: the small API users call instead of raw h5py.

    from clevr_remv.store import DatasetReader

    ds = DatasetReader("out")
    for shard, row in ds.iter_scenes("test"):
        scene = shard.scene(row)                       # clevr_remv.scene.Scene
        centre = shard.view(row, scene.rig.centre_view)  # dict of numpy arrays
        pairs = [r for r in shard.refs() if r["scene"] == row]

Only the requested view is read from disk: the pixel datasets are chunked one view per
chunk, so `view()` decompresses exactly one image, one mask and one depth map.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clevr_remv.scene import Scene
from clevr_remv.store.manifest import manifest_path, require_manifest
from clevr_remv.store.shard import attrs_dict


class ShardReader:
    """One open shard file. Use as a context manager, or call `close()`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._file = h5py.File(self.path, "r")

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        """Number of scenes in the shard."""
        return int(self._file["scenes"].shape[0])

    @property
    def num_views(self) -> int:
        return int(self._file["masks"].shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        _, _, h, w = self._file["masks"].shape
        return int(h), int(w)

    @property
    def attrs(self) -> dict[str, Any]:
        """File attributes (schema version, split, shard index, config, rig ...)."""
        return attrs_dict(self._file)

    def scene(self, i: int) -> Scene:
        """The description of the scene in row `i`."""
        return Scene.from_json(self._file["scenes"].asstr()[i])

    def view(self, i: int, v: int) -> dict[str, np.ndarray]:
        """Image (H,W,3) uint8, mask (H,W) uint8, depth (H,W) float32 and cameras of view `v`."""
        f = self._file
        return {
            "image": f["images"][i, v],
            "mask": f["masks"][i, v],
            "depth": f["depth"][i, v],
            "intrinsics": f["cameras/intrinsics"][i, v],
            "world_to_camera": f["cameras/world_to_camera"][i, v],
        }

    def visible_pixels(self, i: int) -> np.ndarray:
        """(V, 10) int32: visible pixel count of each object (column k-1 = object k) per view."""
        return self._file["visible_pixels"][i]

    def refs(self) -> list[dict[str, Any]]:
        """All referring pairs of the shard, one dict per pair (`scene` is the row here)."""
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
        """Open each shard of `split` in turn; each is closed when the next one is opened."""
        for path in self.shard_paths(split):
            with ShardReader(path) as shard:
                yield shard

    def iter_scenes(self, split: str) -> Iterator[tuple[ShardReader, int]]:
        """(shard, row) for every scene of `split`; read what you need through the shard."""
        for shard in self.iter_shards(split):
            for row in range(len(shard)):
                yield shard, row
