"""What the light-field exports (`export hci`, `export lf-mat`, `export focal-stack`) share: the
choice of splits and scenes (`--scenes A:B`), a walk over whole scenes shard by shard (in
`--workers` processes, streaming: one scene in memory per process), and the all-or-nothing output
folder of the other exports (`export.common.staged_directory`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clevr_remv.contract import counted
from clevr_remv.data.lightfield_scenes import PIXELS, LightFieldScene, shard_scenes
from clevr_remv.data.selection import describe_range, parse_scene_range
from clevr_remv.export.common import ExportPlan, run_shards, staged_directory, summary

log = logging.getLogger("clevr_remv")

class LightFieldPlan(ExportPlan):
    """The splits, scenes and shards to export, checked before anything is written."""

    def __init__(self, root: Path, splits: Sequence[str] | None, indices: range | None,
                 views_per_scene: int | None = None, what: Sequence[str] = PIXELS) -> None:
        self.indices = indices
        self.what = tuple(what)
        super().__init__(root, "all", splits)
        # Views written per scene, the progress bar's unit (None: every view of the rig).
        self.views_per_scene = self.grid * self.grid if views_per_scene is None else views_per_scene
        if self.total_scenes == 0:
            sizes = ", ".join(f"{s} has {self.scene_count(s)}" for s in self.splits)
            raise ValueError(f"nothing to export: no scene in {describe_range(indices)} ({sizes})")

    def scene_count(self, split: str) -> int:
        return int(self.reader.manifest["splits"][split].get("scenes", 0))

    def selected(self, split: str) -> range:
        count = range(self.scene_count(split))
        return count if self.indices is None else count[self.indices.start:self.indices.stop]

    @property
    def total_scenes(self) -> int:
        return sum(len(self.selected(s)) for s in self.splits)

    @property
    def total_views(self) -> int:  # the progress bar's unit: views written
        return self.total_scenes * self.views_per_scene

    def _shard_scenes(self, split: str, path: Path) -> range | None:
        """The scene indices shard `path` holds, from the manifest's config (None if unknown)."""
        per = self.reader.manifest.get("config", {}).get("scenes_per_shard")
        number = re.search(r"shard-(\d+)\.h5$", Path(path).name)
        if not per or not number:
            return None
        first = int(number[1]) * int(per)
        return range(first, min(first + int(per), self.scene_count(split)))

    def shards(self) -> list[tuple[str, Path]]:
        chosen = []
        for split, path in super().shards():
            held, wanted = self._shard_scenes(split, path), self.selected(split) if self.indices is not None else None
            if held is not None and wanted is not None and not set(held) & set(wanted):
                continue
            chosen.append((split, path))
        return chosen

    def scenes_of(self, split: str, path: Path) -> Any:
        """The chosen scenes of one shard, whole, one at a time."""
        return shard_scenes(path, split, self.grid, self.root, self.indices, self.what)


SceneWriter = Callable[[LightFieldScene, Path, dict[str, Any]], int]


class ShardWorker:
    """`run_shards`' work function for one format: writes every chosen scene of a shard with
    `write(scene, staging, options)` (which returns the views it wrote) and returns each scene's
    record for export.json. A class, not a closure, so worker processes can unpickle it."""

    def __init__(self, write: SceneWriter, options: dict[str, Any]) -> None:
        self.write, self.options = write, options

    def __call__(self, plan: LightFieldPlan, split: str, path: Path, staging: Path,
                 tick: Callable[[], Any] | None) -> tuple[int, list[dict[str, Any]]]:
        written, records = 0, []
        for scene in plan.scenes_of(split, path):
            views = self.write(scene, staging, self.options)
            written += views
            records.append({"split": split, "scene": scene.index, "name": scene.name,
                            "disp_min": scene.disp_min if scene.depth is not None else None,
                            "disp_max": scene.disp_max if scene.depth is not None else None})
            if tick is not None:
                for _ in range(views):
                    tick()
        return written, records


def export_lightfield(kind: str, write: SceneWriter, root: Path, out: Path, splits: Sequence[str] | None, *,
                      scenes: str | None = None, views_per_scene: int | None = None,
                      what: Sequence[str] = PIXELS, options: dict[str, Any] | None = None,
                      overwrite: bool = False, workers: int = 1, progress: bool = False) -> dict[str, Any]:
    """Export the chosen scenes of `root` into `out` with `write`, all or nothing; the summary."""
    indices = parse_scene_range(scenes)
    plan = LightFieldPlan(Path(root), splits, indices, views_per_scene, what)
    log.info("exporting %s of %s (%s) as %s into %s", describe_range(indices), ", ".join(plan.splits),
             counted(plan.total_scenes, "scene"), kind, out)
    with staged_directory(Path(out), Path(root), overwrite) as staging:
        for split in plan.splits:
            (staging / split_folder(kind, split)).mkdir(parents=True, exist_ok=True)
        results = run_shards(plan, ShardWorker(write, dict(options or {}, kind=kind)), staging, workers, progress)
        records = [record for shard in results for record in shard]
        counts = {s: {"scenes": sum(r["split"] == s for r in records)} for s in plan.splits}
        result = summary(kind, plan, out, counts)
        # As export hf: no path of this machine in OUT (it is copied to others), the folder names only.
        result.update(source=plan.root.resolve().name, out=".")
        result.update(scenes=records, options={k: v for k, v in (options or {}).items()},
                      scene_range=describe_range(indices))
        from clevr_remv.export.common import write_json

        write_json(result, staging / "export.json")
    return result


# Folder of each split inside an export: BasicLFSR's scripts read `training/` and `test/`.
_LF_MAT_SPLITS = {"train": "training", "val": "validation", "test": "test"}


def split_folder(kind: str, split: str) -> str:
    if kind == "lf-mat":
        return _LF_MAT_SPLITS.get(split, split)
    return split
