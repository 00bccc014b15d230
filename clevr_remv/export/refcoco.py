"""`export refcoco`: the layout that REFER (refer.py of LAVT, CRIS and their descendants)
reads unchanged with `REFER(OUT, "refcoco", "unc")`.

    OUT/refcoco/instances.json                   COCO images, annotations, categories
    OUT/refcoco/refs(unc).p                      pickle: list of ref dicts
    OUT/images/mscoco/images/train2014/*.png     one PNG per exported view
    OUT/export.json                              what was exported, with counts

REFER only knows the dataset names refcoco, refcoco+, refcocog and refclef, hence the
borrowed name. One ref per (pair, view): REFER has no notion of views, so each view is its
own image and a pair seen from four corners is four refs (ids in export/common.py).

A REFER ref has one `ann_id`: a dataset whose sentences name several objects or none
(`--targets any`) is refused before anything is written, and `export grefcoco` (gRefCOCO's
layout, export/grefcoco.py) exports it.
"""

from __future__ import annotations

import logging
import pickle
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clevr_remv.contract import counted
from clevr_remv.data.selection import ViewSpec, describe_views
from clevr_remv.export.common import (
    CATEGORIES,
    ExportPlan,
    ExportView,
    Pair,
    run_shards,
    sample_id,
    sentence_entry,
    staged_directory,
    summary,
    write_json,
    write_view,
)

log = logging.getLogger("clevr_remv")

DATASET = "refcoco"
SPLIT_BY = "unc"
IMAGE_DIR = Path("images/mscoco/images/train2014")
REFS_NAME = f"refs({SPLIT_BY}).p"


def ref_record(item: ExportView, pair: Pair, ann: dict[str, Any]) -> dict[str, Any]:
    """A ref dict with every field REFER and the RES data loaders read, plus our provenance.

    REFER's `ref_id` (and `sent_id`) is the package's `sample_id` of this (pair, view): REFER has one
    image per ref, so a ref is a (pair, view) here. `clevr_remv_ref_id` is the package's `ref_id`, the
    pair's refs/id in its split (docs/output-format.md, "Ids")."""
    rid = sample_id(item.split_no, pair.id, item.view)
    return {
        "ref_id": rid, "ann_id": ann["id"], "image_id": item.image_id, "split": item.split,
        "category_id": ann["category_id"], "file_name": item.file_name, "sent_ids": [rid],
        "sentences": [sentence_entry(pair.sentence, rid)],
        "clevr_remv_ref_id": pair.id, "scene": item.scene, "view": item.view, "object": pair.object,
    }


def require_one_target(plan: ExportPlan) -> None:
    """ValueError (one line) where a chosen split has sentences that name several objects or none:
    a REFER ref has one `ann_id`, and skipping them would export a different dataset unnoticed."""
    several, none = plan.pairs_not_single()
    if several or none:
        verb = "names" if several + none == 1 else "name"
        raise ValueError(f"{counted(several + none, 'referring pair')} of {', '.join(plan.splits)} {verb} several objects "
                         f"({several}) or none ({none}), which REFER's one-object refs cannot hold: "
                         "export them with clevr-remv export grefcoco")


def _export_shard(plan: ExportPlan, split: str, path: Path, staging: Path,
                  tick: Callable[[], Any] | None) -> tuple[int, dict[str, Any]]:
    """Write one shard's views; its image records, annotations, refs and counts."""
    out: dict[str, Any] = {"images": [], "annotations": [], "refs": [], "split": split,
                           "counts": Counter(images=0, annotations=0, refs=0, skipped_invisible=0)}
    for item in plan.views_of(split, path):
        record, anns = write_view(item, staging / IMAGE_DIR)
        for ann in anns.values():
            # REFER's getMask tests `type(segmentation[0]) == list` (polygons) and otherwise
            # decodes `segmentation` as a list of RLEs (its refclef convention).
            ann["segmentation"] = [ann["segmentation"]]
        visible = [pair for pair in item.pairs if pair.visible and pair.object in anns]
        out["images"].append(record)
        out["annotations"].extend(anns.values())
        out["refs"].extend(ref_record(item, pair, anns[pair.object]) for pair in visible)
        out["counts"].update(images=1, annotations=len(anns), refs=len(visible),
                             skipped_invisible=len(item.pairs) - len(visible))
        if tick is not None:
            tick()
    return out["counts"]["images"], out


def export_refcoco(root: Path, out: Path, views: ViewSpec = "center", splits: list[str] | None = None, *,
                   overwrite: bool = False, workers: int = 1, progress: bool = False) -> dict[str, Any]:
    """Export the chosen views and splits of the dataset in `root` to `out`; returns the summary.
    Refused (ValueError, nothing written) where a sentence names several objects or none."""
    plan = ExportPlan(root, views, splits)
    require_one_target(plan)
    log.info("exporting %s, views %s, as REFER %s/%s into %s",
             ", ".join(plan.splits), describe_views(plan.views, plan.grid), DATASET, SPLIT_BY, out)
    counts = {s: Counter(images=0, annotations=0, refs=0, skipped_invisible=0) for s in plan.splits}
    instances: dict[str, list[dict[str, Any]]] = {"images": [], "annotations": []}
    refs: list[dict[str, Any]] = []
    with staged_directory(out, root, overwrite) as staging:
        (staging / IMAGE_DIR).mkdir(parents=True)
        for shard in run_shards(plan, _export_shard, staging, workers, progress):
            instances["images"].extend(shard["images"])
            instances["annotations"].extend(shard["annotations"])
            refs.extend(shard["refs"])
            counts[shard["split"]].update(shard["counts"])
        result = summary(DATASET, plan, out, {s: dict(c) for s, c in counts.items()})
        result["refer"] = {"data_root": str(Path(out).resolve()), "dataset": DATASET, "splitBy": SPLIT_BY}
        write_json({"info": {"description": "CLEVR-Remv views exported for REFER", "views": plan.views},
                    **instances, "categories": CATEGORIES}, staging / DATASET / "instances.json")
        write_json(result, staging / "export.json")
        with open(staging / DATASET / REFS_NAME, "wb") as f:
            pickle.dump(refs, f, protocol=2)  # protocol 2: loadable by every Python 3 (and 2.7)
    return result
