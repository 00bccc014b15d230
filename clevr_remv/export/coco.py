"""`export coco`: COCO instance segmentation (every object of every chosen view), for
detection and segmentation code that reads COCO annotation files.

    OUT/annotations/instances_<split>.json   images, annotations (RLE), categories
    OUT/<split>/*.png                         one PNG per exported view
    OUT/export.json                           what was exported, with counts

Ids and file names are the same as in `export refcoco` (export/common.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from clevr_remv.export.common import (
    CATEGORIES,
    ExportPlan,
    staged_directory,
    summary,
    write_json,
    write_view,
)
from clevr_remv.loader import ViewSpec

log = logging.getLogger("clevr_remv")


def export_coco(root: Path, out: Path, views: ViewSpec = "center", splits: list[str] | None = None, *,
                overwrite: bool = False, progress: bool = False) -> dict[str, Any]:
    """Export the chosen views and splits of the dataset in `root` to `out`; returns the summary."""
    plan = ExportPlan(root, views, splits)
    log.info("exporting %s, views %s of the %dx%d rig, as COCO instances into %s",
             ", ".join(plan.splits), plan.views, plan.grid, plan.grid, out)
    files: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"images": [], "annotations": []} for s in plan.splits}
    with staged_directory(out, root, overwrite) as tmp:
        for split in plan.splits:
            (tmp / split).mkdir()
        with plan.progress_bar(progress) as bar:
            for item in plan:
                record, anns = write_view(item, tmp / item.split)
                files[item.split]["images"].append(record)
                files[item.split]["annotations"].extend(anns.values())
                bar.update(1)
        counts = {s: {"images": len(f["images"]), "annotations": len(f["annotations"])} for s, f in files.items()}
        for split, content in files.items():
            write_json({"info": {"description": f"CLEVR-Remv {split}", "views": plan.views}, **content,
                        "categories": CATEGORIES}, tmp / "annotations" / f"instances_{split}.json")
        result = summary("coco", plan, out, counts)
        write_json(result, tmp / "export.json")
    return result
