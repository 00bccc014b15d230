"""Whole light-field scenes read from the shards: every view's image, mask and depth at once,
with the scene's referring pairs and its disparity ground truth.

A scene is read as one unit (81 image, mask and depth chunks at 9×9) and nothing of the next
scene is held meanwhile, so a walk over a split streams: memory stays that of one scene.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clevr_remv.lightfield.disparity import (
    disparity_from_depth,
    disparity_range,
    valid_pixels,
)
from clevr_remv.scene import rig
from clevr_remv.scene.description import RigSpec, Scene

if TYPE_CHECKING:  # the store (h5py) is imported when a scene is read, not with the loader
    from clevr_remv.store.refs import RefTable

# What a scene can be read with (`what`): LightFieldScene's pixel fields (store.reader.STACK_FIELDS).
PIXELS = ("images", "masks", "depth")


def scene_name(split: str, index: int) -> str:
    """The name an export gives a scene (folder, file and `disp_maps/<name>.pfm`): `test_00003`."""
    return f"{split}_{index:05d}"


@dataclass(frozen=True)
class Pair:
    """A referring pair of the scene: `visible` per view (`refs/visible`); `targets` every object it names
    (`object` is the one target, or 0 where a sentence names several or none: `--targets any`)."""

    id: int
    object: int
    sentence: str
    family: str
    visible: np.ndarray  # (V,) bool
    targets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.targets and self.object:  # made with its one referent alone
            object.__setattr__(self, "targets", (self.object,))

    def __repr__(self) -> str:
        """One readable line: the visible views counted (and listed while few), not an 81-element array."""
        seen = [int(v) for v in np.flatnonzero(self.visible)]
        views = (f"all {len(seen)} views" if len(seen) == len(self.visible) else
                 f"{len(seen)} of {len(self.visible)} views" + (f" ({', '.join(map(str, seen))})" if len(seen) <= 8 else ""))
        return (f"Pair(id={self.id}, object={self.object}, sentence={self.sentence!r}, family={self.family!r}, "
                f"visible in {views})")

    def record(self) -> dict[str, Any]:
        """JSON form: the visible views listed, not a boolean per view."""
        return {"ref_id": self.id, "object": self.object, "targets": list(self.targets), "sentence": self.sentence,
                "family": self.family, "visible_views": [int(v) for v in np.flatnonzero(self.visible)]}


@dataclass
class LightFieldScene:
    """One scene of a split with all its views. Pixel arrays are None where not read."""

    split: str
    index: int
    grid: int
    scene: Scene
    shard: Path
    row: int
    pairs: list[Pair]
    images: np.ndarray | None = None  # (V, H, W, 3) uint8
    masks: np.ndarray | None = None   # (V, H, W) uint8, 0 background, k = object k
    depth: np.ndarray | None = None   # (V, H, W) float32, +inf background
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return scene_name(self.split, self.index)

    @property
    def spec(self) -> RigSpec:
        return self.scene.rig

    @property
    def centre(self) -> int:
        return rig.centre_view(self.grid)

    @cached_property
    def disparity(self) -> np.ndarray:
        """(V, H, W) float32 disparity of every view (needs `depth`)."""
        if self.depth is None:
            raise ValueError(f"scene {self.name}: depth was not read, so there is no disparity")
        return disparity_from_depth(self.spec, self.depth)

    @property
    def valid(self) -> np.ndarray:
        """(V, H, W) bool: pixels with a surface (finite depth)."""
        if self.depth is None:
            raise ValueError(f"scene {self.name}: depth was not read")
        return valid_pixels(self.depth)

    @cached_property
    def disp_range(self) -> tuple[float, float]:
        """(disp_min, disp_max) over the surfaces of every view: the scene's disparity range."""
        return disparity_range(self.disparity, self.depth)

    @property
    def disp_min(self) -> float:
        return self.disp_range[0]

    @property
    def disp_max(self) -> float:
        return self.disp_range[1]


def _pairs_by_row(refs: RefTable) -> dict[int, list[Pair]]:
    by_row: dict[int, list[Pair]] = {}
    for k in range(len(refs)):
        by_row.setdefault(int(refs.scene[k]), []).append(
            Pair(int(refs.id[k]), int(refs.object[k]), str(refs.expression[k]), str(refs.family[k]),
                 np.asarray(refs.visible[k], bool), refs.target_ids(k)))
    return by_row


def shard_scenes(path: Path, split: str, grid: int, root: Path | None = None, indices: range | None = None,
                 what: Sequence[str] = PIXELS) -> Iterator[LightFieldScene]:
    """The scenes of one shard whose split-wide index is in `indices` (all by default), one at a
    time, with the pixel datasets named in `what` read for every view."""
    from clevr_remv.store.reader import ShardReader

    unknown = set(what) - set(PIXELS)
    if unknown:
        raise ValueError(f"unknown pixel datasets {sorted(unknown)} (have {', '.join(PIXELS)})")
    with ShardReader(path, root) as shard:
        with shard.reading("scenes and refs"):
            texts, numbers, refs = shard.scene_texts(), shard.scene_indices(), shard.ref_table()
        pairs = _pairs_by_row(refs)
        for row, number in enumerate(numbers):
            if indices is not None and int(number) not in indices:
                continue
            pixels = {name: shard.all_views(row, name) for name in what}
            yield LightFieldScene(split, int(number), grid, Scene.from_json(texts[row]), Path(path), row,
                                  pairs.get(row, []), **pixels)


def _grid(manifest: dict[str, Any]) -> int:
    from clevr_remv.data.selection import rig_grid

    return rig_grid(manifest)


def iter_lightfield_scenes(root: Path | str, split: str, indices: range | None = None,
                           what: Sequence[str] = PIXELS) -> Iterator[LightFieldScene]:
    """Every scene of `split` (those with index in `indices`), in order, one at a time."""
    from clevr_remv.store import DatasetReader

    reader = DatasetReader(root)
    grid = _grid(reader.manifest)
    for path in reader.shard_paths(split):
        yield from shard_scenes(path, split, grid, reader.root, indices, what)


def read_lightfield_scene(root: Path | str, split: str, index: int,
                          what: Sequence[str] = PIXELS) -> LightFieldScene:
    """Scene `index` of `split`, every view; ValueError naming the split's range if there is none."""
    for scene in iter_lightfield_scenes(root, split, range(index, index + 1), what):
        return scene
    from clevr_remv.store import DatasetReader

    count = int(DatasetReader(root).manifest["splits"][split].get("scenes", 0))
    raise ValueError(f"no scene {index} in split {split!r} of {root} (it has scenes 0..{count - 1})")


def read_disparity(root: Path | str, split: str, index: int, views: Sequence[int] | None = None) -> np.ndarray:
    """Disparity ground truth of scene `index` of `split`: (V, H, W) float32 for every view, or
    for `views` only, in pixels per view step (d = f·b·(1/z − 1/z_focus), positive nearer than the
    focus plane; the background gets the disparity of infinity)."""
    scene = read_lightfield_scene(root, split, index, what=("depth",))
    disparity = scene.disparity
    return disparity if views is None else disparity[list(views)]


def scenes_json(scene: LightFieldScene) -> dict[str, Any]:
    """The scene's sentences and description, as the light-field exports write them beside the data."""
    return {"scene": scene.name, "split": scene.split, "index": scene.index, "grid": scene.grid,
            "centre_view": scene.centre, "pairs": [p.record() for p in scene.pairs],
            "description": json.loads(scene.scene.to_json())}
