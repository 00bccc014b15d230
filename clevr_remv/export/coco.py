"""`export coco`: COCO instance segmentation (every object of every chosen view), for
detection and segmentation code that reads COCO annotation files.

    OUT/annotations/instances_<split>.json   images, annotations (RLE), categories
    OUT/<split>/*.png                         one PNG per exported view
    OUT/export.json                           what was exported, with counts

Ids and file names are the same as in `export refcoco` (export/common.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clevr_remv.export.common import (
    CATEGORIES,
    ExportPlan,
    run_shards,
    staged_directory,
    summary,
    write_json,
    write_view,
)
from clevr_remv.loader import ViewSpec, describe_views

log = logging.getLogger("clevr_remv")


def _export_shard(plan: ExportPlan, split: str, path: Path, staging: Path,
                  tick: Callable[[], Any] | None) -> tuple[int, dict[str, Any]]:
    """Write one shard's views into staging/<split>; its image records and annotations."""
    out: dict[str, Any] = {"split": split, "images": [], "annotations": []}
    for item in plan.views_of(split, path):
        record, anns = write_view(item, staging / split)
        out["images"].append(record)
        out["annotations"].extend(anns.values())
        if tick is not None:
            tick()
    return len(out["images"]), out


def export_coco(root: Path, out: Path, views: ViewSpec = "center", splits: list[str] | None = None, *,
                overwrite: bool = False, workers: int = 1, progress: bool = False) -> dict[str, Any]:
    """Export the chosen views and splits of the dataset in `root` to `out`; returns the summary."""
    plan = ExportPlan(root, views, splits)
    log.info("exporting %s, views %s, as COCO instances into %s",
             ", ".join(plan.splits), describe_views(plan.views, plan.grid), out)
    files: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"images": [], "annotations": []} for s in plan.splits}
    with staged_directory(out, root, overwrite) as staging:
        for split in plan.splits:
            (staging / split).mkdir()
        for shard in run_shards(plan, _export_shard, staging, workers, progress):
            files[shard["split"]]["images"].extend(shard["images"])
            files[shard["split"]]["annotations"].extend(shard["annotations"])
        counts = {s: {"images": len(f["images"]), "annotations": len(f["annotations"])} for s, f in files.items()}
        for split, content in files.items():
            write_json({"info": {"description": f"CLEVR-Remv {split}", "views": plan.views}, **content,
                        "categories": CATEGORIES}, staging / "annotations" / f"instances_{split}.json")
        result = summary("coco", plan, out, counts)
        write_json(result, staging / "export.json")
    return result
