"""`export grefcoco`: the layout of gRefCOCO (generalised referring expression segmentation, GRES;
Liu, Ding and Jiang, CVPR 2023), which the `G_REFER` API of ReLA
(henghuiding/ReLA, gres_model/data/datasets/grefer.py) reads unchanged with
`G_REFER(OUT, "grefcoco", "unc")`:

    OUT/grefcoco/grefs(unc).json     JSON list of ref dicts
    OUT/grefcoco/instances.json      COCO images, annotations, categories
    OUT/images/train2014/*.png       one PNG per exported view
    OUT/export.json                  what was exported, with counts

A gRefCOCO sentence names one object, several or none, which is what `--targets any` writes: a
ref's `ann_id` and `category_id` are lists (one entry per target, in object order), and a ref
that names nothing has `ann_id == [-1]`, `category_id == [-1]` and `no_target` true (G_REFER
maps ann id -1 to None and `getMaskByRef` gives it an empty mask). Everything else is the
RefCOCO export's (export/refcoco.py): one image per (scene, view), one ref per (pair, view) whose
targets are all visible in that view, the same ids.

`segmentation` is COCO polygons by default (`--segmentation polygon`), as gRefCOCO has them: the one
form every step of ReLA reads, G_REFER's `getMask`, `load_grefcoco_json` (which takes a list as
polygons) and its training mapper (which converts polygons only). They give back the exact mask except
where an object's visible mask has a hole (COCO polygons have none): such annotations are counted as
`inexact_polygons`. `--segmentation rle` writes a one-element list of a pycocotools RLE instead, exact
always, which G_REFER's `getMask` decodes but ReLA's `load_grefcoco_json` does not take.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clevr_remv.data.selection import ViewSpec, describe_views
from clevr_remv.export.common import (
    CATEGORIES,
    ExportPlan,
    ExportView,
    Pair,
    mask_polygons,
    run_shards,
    sample_id,
    sentence_entry,
    staged_directory,
    summary,
    write_json,
    write_view,
)

log = logging.getLogger("clevr_remv")

DATASET = "grefcoco"  # the one dataset name G_REFER accepts
SPLIT_BY = "unc"
IMAGE_DIR = Path("images/train2014")  # G_REFER's IMAGE_DIR and ReLA's image_root, under data_root
REFS_NAME = f"grefs({SPLIT_BY}).json"
NO_TARGET = -1  # gRefCOCO's ann_id (and category_id) of a sentence that names nothing
COUNTS = ("images", "annotations", "refs", "no_target", "multi_target", "skipped_invisible", "inexact_polygons")
SEGMENTATIONS = ("polygon", "rle")


def ref_record(item: ExportView, pair: Pair, anns: list[dict[str, Any]]) -> dict[str, Any]:
    """A gRefCOCO ref dict: every field G_REFER and ReLA's loader read, plus our provenance.

    `anns` are the targets' annotations in this view (empty: the sentence names nothing). As in
    the RefCOCO export, `ref_id` and `sent_id` are the (pair, view)'s `sample_id` and
    `clevr_remv_ref_id` the pair's refs/id (docs/output-format.md, "Ids")."""
    rid = sample_id(item.split_no, pair.id, item.view)
    return {
        "ref_id": rid, "image_id": item.image_id, "split": item.split, "file_name": item.file_name,
        "ann_id": [a["id"] for a in anns] or [NO_TARGET],
        "category_id": [a["category_id"] for a in anns] or [NO_TARGET],
        "no_target": not anns, "sent_ids": [rid], "sentences": [sentence_entry(pair.sentence, rid)],
        "clevr_remv_ref_id": pair.id, "scene": item.scene, "view": item.view, "targets": list(pair.targets),
    }


def _exportable(pair: Pair, anns: dict[int, dict[str, Any]]) -> bool:
    """Whether a (pair, view) becomes a ref: every target visible there (`refs/visible`, as the
    loader's samples) and with pixels, so each has an annotation; a no-target pair always is."""
    return pair.visible and all(obj in anns for obj in pair.targets)


def _as_segmentation(item: ExportView, anns: dict[int, dict[str, Any]], segmentation: str) -> int:
    """Put each annotation's segmentation in the chosen form; how many polygons miss their mask (holes)."""
    inexact = 0
    for obj, ann in anns.items():
        if segmentation == "rle":
            ann["segmentation"] = [ann["segmentation"]]  # getMask: a list of RLEs (lists would be polygons)
            continue
        ann["segmentation"], exact = mask_polygons(item.mask == obj)
        inexact += not exact
    return inexact


def _export_shard(plan: ExportPlan, split: str, path: Path, staging: Path,
                  tick: Callable[[], Any] | None, segmentation: str = "polygon") -> tuple[int, dict[str, Any]]:
    """Write one shard's views; its image records, annotations, refs and counts."""
    out: dict[str, Any] = {"images": [], "annotations": [], "refs": [], "split": split,
                           "counts": Counter({key: 0 for key in COUNTS})}
    for item in plan.views_of(split, path):
        record, anns = write_view(item, staging / IMAGE_DIR)
        inexact = _as_segmentation(item, anns, segmentation)
        refs = [ref_record(item, pair, [anns[obj] for obj in pair.targets])
                for pair in item.pairs if _exportable(pair, anns)]
        out["images"].append(record)
        out["annotations"].extend(anns.values())
        out["refs"].extend(refs)
        out["counts"].update(images=1, annotations=len(anns), refs=len(refs),
                             no_target=sum(r["no_target"] for r in refs),
                             multi_target=sum(len(r["ann_id"]) > 1 for r in refs),
                             skipped_invisible=len(item.pairs) - len(refs), inexact_polygons=inexact)
        if tick is not None:
            tick()
    return out["counts"]["images"], out


def export_grefcoco(root: Path, out: Path, views: ViewSpec = "center", splits: list[str] | None = None, *,
                    overwrite: bool = False, workers: int = 1, progress: bool = False,
                    segmentation: str = "polygon") -> dict[str, Any]:
    """Export the chosen views and splits of the dataset in `root` to `out` in gRefCOCO's layout;
    returns the summary (also OUT/export.json). Single-target datasets export too: every ref then
    has a one-element `ann_id`. `segmentation`: "polygon" (ReLA end to end) or "rle" (exact)."""
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"--segmentation {segmentation!r}: choose polygon or rle")
    plan = ExportPlan(root, views, splits)
    log.info("exporting %s, views %s, as G_REFER %s/%s into %s",
             ", ".join(plan.splits), describe_views(plan.views, plan.grid), DATASET, SPLIT_BY, out)
    counts = {s: Counter({key: 0 for key in COUNTS}) for s in plan.splits}
    instances: dict[str, list[dict[str, Any]]] = {"images": [], "annotations": []}
    refs: list[dict[str, Any]] = []
    with staged_directory(out, root, overwrite) as staging:
        (staging / IMAGE_DIR).mkdir(parents=True)
        work = functools.partial(_export_shard, segmentation=segmentation)
        for shard in run_shards(plan, work, staging, workers, progress):
            instances["images"].extend(shard["images"])
            instances["annotations"].extend(shard["annotations"])
            refs.extend(shard["refs"])
            counts[shard["split"]].update(shard["counts"])
        result = summary(DATASET, plan, out, {s: dict(c) for s, c in counts.items()})
        result["g_refer"] = {"data_root": str(Path(out).resolve()), "dataset": DATASET, "splitBy": SPLIT_BY}
        result["segmentation"] = segmentation
        write_json({"info": {"description": "CLEVR-Remv views exported for G_REFER", "views": plan.views},
                    **instances, "categories": CATEGORIES}, staging / DATASET / "instances.json")
        write_json(refs, staging / DATASET / REFS_NAME)
        write_json(result, staging / "export.json")
    return result
