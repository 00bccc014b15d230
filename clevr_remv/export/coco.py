"""`export coco`: COCO instance segmentation (every object of every chosen view), for
detection and segmentation code that reads COCO annotation files.

    OUT/annotations/instances_<split>.json   images, annotations (RLE), categories
    OUT/<split>/*.png                         one PNG per exported view
    OUT/export.json                           what was exported, with counts

Ids and file names are the same as in `export refcoco` (export/common.py).

`amodal=True` (`export coco --amodal`, datasets rendered with `--amodal-masks`) writes the layout of
the COCO-style amodal sets (D2SA, COCOA-cls, and UOAIS's synthetic set, whose detectron2 loaders
read it): every object with an amodal pixel in the view gets an annotation, fully hidden ones too,
with `segmentation` the amodal mask (RLE), `area` and `bbox` its area and box, `visible_mask` and
`invisible_mask` the visible and hidden parts (RLE), `visible_area`, `visible_bbox`, and
`occlude_rate` = 1 - visible / amodal pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.data.selection import ViewSpec, describe_views
from clevr_remv.export.common import (
    CATEGORIES,
    CATEGORY_IDS,
    ExportPlan,
    ann_id,
    run_shards,
    staged_directory,
    summary,
    write_json,
    write_view,
)
from clevr_remv.store.reader import ShardReader


def require_amodal_masks(plan: ExportPlan) -> None:
    """ValueError (one line) unless every shard to export holds amodal masks."""
    for _split, path in plan.shards():
        with ShardReader(path, plan.root) as shard:
            if not shard.has_amodal_masks:
                raise ValueError(f"{path} has no amodal masks: --amodal needs a dataset rendered with "
                                 "render --amodal-masks")

log = logging.getLogger("clevr_remv")


def _export_shard(plan: ExportPlan, split: str, path: Path, staging: Path,
                  tick: Callable[[], Any] | None) -> tuple[int, dict[str, Any]]:
    """Write one shard's views into staging/<split>; its image records and annotations."""
    out: dict[str, Any] = {"split": split, "images": [], "annotations": []}
    for item in plan.views_of(split, path):
        record, anns = write_view(item, staging / split)
        if item.amodal is not None:
            anns = amodal_annotations(item.mask, item.amodal, item.shapes, item.image_id)
        out["images"].append(record)
        out["annotations"].extend(anns.values())
        if tick is not None:
            tick()
    return len(out["images"]), out


def _rle(binary: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(binary, dtype=np.uint8))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def amodal_annotations(mask: np.ndarray, amodal: np.ndarray, shapes: dict[int, str],
                       image: int) -> dict[int, dict[str, Any]]:
    """Amodal COCO annotations (the module's docstring) of every object with an amodal pixel in one view."""
    from pycocotools import mask as mask_utils

    anns = {}
    for obj, shape in shapes.items():
        whole, visible = amodal[obj - 1], mask == obj
        if not whole.any():
            continue
        segmentation, visible_rle = _rle(whole), _rle(visible)
        area, visible_area = int(whole.sum()), int(visible.sum())
        anns[obj] = {
            "id": ann_id(image, obj),
            "image_id": image,
            "category_id": CATEGORY_IDS[shape],
            "segmentation": segmentation,
            "area": float(area),
            "bbox": [float(x) for x in mask_utils.toBbox(segmentation)],
            "iscrowd": 0,
            "visible_mask": visible_rle,
            "invisible_mask": _rle(whole & ~visible),
            "visible_area": float(visible_area),
            "visible_bbox": [float(x) for x in mask_utils.toBbox(visible_rle)],
            "occlude_rate": 1.0 - visible_area / area,
            "object": obj,
        }
    return anns


def export_coco(root: Path, out: Path, views: ViewSpec = "center", splits: list[str] | None = None, *,
                overwrite: bool = False, workers: int = 1, progress: bool = False,
                amodal: bool = False) -> dict[str, Any]:
    """Export the chosen views and splits of the dataset in `root` to `out`; returns the summary.
    `amodal`: amodal annotations (the module's docstring); the dataset needs amodal masks."""
    plan = ExportPlan(root, views, splits)
    if amodal:
        require_amodal_masks(plan)
        plan.amodal = True
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
