"""One scene's views, masks, depth and sentences, read once for the picture and the viewer.

`show` is the first thing a user runs on a dataset, often with a typo in the split or an index
past the end: every such mistake becomes a ValueError/FileNotFoundError whose message names the
problem and what exists instead, so the command can print one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clevr_remv.contract import counted
from clevr_remv.scene.description import Scene, SceneObject
from clevr_remv.scene.rig import corner_views
from clevr_remv.store.reader import DatasetReader, ShardReader


@dataclass(frozen=True)
class Sentence:
    """One referring pair of the scene; `visible[v]` is `refs/visible` for view v."""

    id: int
    object: int  # 1-based, as in the masks; 0 where the sentence names several objects or none
    text: str
    family: str
    visible: np.ndarray  # (V,) bool
    targets: tuple[int, ...] = ()  # every object it names (one in the published language), ascending

    def __post_init__(self) -> None:
        if not self.targets and self.object:  # a sentence made with its one referent alone
            object.__setattr__(self, "targets", (self.object,))


def targets_label(sentence: Sentence, scene: Scene) -> str:
    """"object 3 (large red metal cube)", "objects 2, 5" or "no target": what a sentence names, in words."""
    if len(sentence.targets) == 1:
        return f"object {sentence.targets[0]} ({object_label(scene.object(sentence.targets[0]))})"
    if sentence.targets:
        return "objects " + ", ".join(map(str, sentence.targets))
    return "no target"


@dataclass(frozen=True)
class SceneViews:
    """Everything `show` draws: all V views of one scene and its sentences."""

    scene: Scene
    images: np.ndarray  # (V, H, W, 3) uint8
    masks: np.ndarray  # (V, H, W) uint8, 0 background, k = object k
    depth: np.ndarray  # (V, H, W) float32, background +inf
    sentences: tuple[Sentence, ...]
    # (V, 10, H, ceil(W / 8)) bit-packed amodal masks, when the dataset has them (render --amodal-masks)
    amodal_packed: np.ndarray | None = None

    def amodal(self, view: int, object_id: int) -> np.ndarray | None:
        """bool (H, W): the object's amodal mask in `view`, or None without amodal masks."""
        if self.amodal_packed is None:
            return None
        from clevr_remv.store.shard import unpack_masks

        return unpack_masks(self.amodal_packed[view, object_id - 1], self.size[1])

    @property
    def grid(self) -> int:
        return self.scene.rig.grid

    @property
    def centre(self) -> int:
        return self.scene.rig.centre_view

    @property
    def corners(self) -> tuple[int, int, int, int]:
        return corner_views(self.grid)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])


def object_label(obj: SceneObject) -> str:
    """'large red metal cube': the attributes in the order sentences say them."""
    return f"{obj.size} {obj.color} {obj.material} {obj.shape}"


def _scene_row(shard: ShardReader, index: int) -> int | None:
    """The row of scene `index` in `shard`, or None; the shard's attributes say which scenes it holds."""
    attrs = shard.attrs
    first, count = attrs.get("first_scene"), attrs.get("scene_count")
    if first is not None and count is not None:
        if not int(first) <= index < int(first) + int(count):
            return None
        row = index - int(first)
        if row < len(shard) and shard.scene(row).index == index:
            return row
    # No (or inconsistent) attributes: look at the scene descriptions themselves.
    for row in range(len(shard)):
        if shard.scene(row).index == index:
            return row
    return None


def load_scene(root: Path | str, split: str, index: int) -> SceneViews:
    """Read scene `index` (the scene JSON's `index`) of `split` from the dataset in `root`."""
    root = Path(root)
    dataset = DatasetReader(root)
    dataset.require_split(split)
    count = int(dataset.manifest["splits"][split].get("scenes", 0))
    if not 0 <= index < count:
        have = f"0..{count - 1}" if count else "none"
        raise ValueError(f"scene {index} out of range: split {split!r} has {counted(count, 'scene')} ({have})")
    for path in dataset.shard_paths(split):
        with ShardReader(path, root) as shard:  # DamagedShard when missing or unreadable
            row = _scene_row(shard, index)
            if row is not None:
                return _read_scene(shard, row)
    raise ValueError(f"scene {index} of split {split!r} is in none of its shards (is the dataset complete?)")


def _read_scene(shard: ShardReader, row: int) -> SceneViews:
    views = [shard.view(row, v) for v in range(shard.num_views)]
    refs = shard.ref_table()
    sentences = tuple(
        Sentence(id=int(refs.id[k]), object=int(refs.object[k]), text=str(refs.expression[k]),
                 family=str(refs.family[k]), visible=np.asarray(refs.visible[k], dtype=bool),
                 targets=refs.target_ids(int(k)))
        for k in np.flatnonzero(refs.scene == row)
    )
    return SceneViews(
        scene=shard.scene(row),
        images=np.stack([v["image"] for v in views]),
        masks=np.stack([v["mask"] for v in views]),
        depth=np.stack([v["depth"] for v in views]),
        sentences=sentences,
        amodal_packed=shard.amodal_masks_packed(row),
    )
