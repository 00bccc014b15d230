"""What the RefCOCO and COCO exports share: ids, file names, categories, RLE annotations,
the walk over (scene, view) in the shards, and the all-or-nothing output directory.

Every exported view is its own COCO image. Ids are derived from (split, scene, view,
object) rather than counted, so two exports of the same dataset agree on every id
whatever views or splits they chose, and a prediction can be traced back to its scene.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from clevr_remv.data.selection import ViewSpec, rig_grid, select_views
from clevr_remv.export.png import write_png
from clevr_remv.outputs import refuse_non_empty
from clevr_remv.scene.vocabulary import SHAPES
from clevr_remv.store.atomic import (
    exchange_paths,
    fsync_dir,
    stale_temporaries_of,
    temp_path_for,
)
from clevr_remv.store.reader import ShardReader, require_shard_files

log = logging.getLogger("clevr_remv")

T = TypeVar("T")

# image_id = split_no * SPLIT_STRIDE + scene * VIEW_STRIDE + view (split_no 1, 2, 3 ... in
# manifest order: train, val, test); ann_id = image_id * OBJECT_STRIDE + object.
# image ids stay below 2^31 for up to 9 splits of 100,000 scenes.
VIEW_STRIDE = 1_000
SPLIT_STRIDE = 100_000_000
OBJECT_STRIDE = 100
# sample_id = (split_no * PAIR_STRIDE + ref_id) * VIEW_STRIDE + view: one id per (pair, view), unique
# across splits, where ref_id is the pair's refs/id within its split (docs/output-format.md, "Ids").
# export refcoco stores it as REFER's `ref_id` (REFER has one image per ref), export hf as `sample_id`.
PAIR_STRIDE = 1_000_000_000

CATEGORIES: list[dict[str, Any]] = [
    {"id": i + 1, "name": shape, "supercategory": "shape"} for i, shape in enumerate(SHAPES)
]
CATEGORY_IDS: dict[str, int] = {c["name"]: c["id"] for c in CATEGORIES}


def image_id(split_no: int, scene: int, view: int) -> int:
    """The COCO image id of one view of one scene (deterministic, unique across splits)."""
    if not (0 <= view < VIEW_STRIDE and 0 <= scene < SPLIT_STRIDE // VIEW_STRIDE):
        raise ValueError(f"scene {scene} / view {view} too large for the export's id scheme")
    return split_no * SPLIT_STRIDE + scene * VIEW_STRIDE + view


def ann_id(image: int, obj: int) -> int:
    return image * OBJECT_STRIDE + obj


def sample_id(split_no: int, ref_id: int, view: int) -> int:
    """The id of one (pair, view), unique across splits: pair `ref_id` (its refs/id in split number
    `split_no`, 1, 2, 3 ... in manifest order) seen from `view`."""
    if not 0 <= ref_id < PAIR_STRIDE:
        raise ValueError(f"refs/id {ref_id} too large for the export's id scheme")
    if not 0 <= view < VIEW_STRIDE:
        raise ValueError(f"view {view} too large for the export's id scheme")
    return (split_no * PAIR_STRIDE + ref_id) * VIEW_STRIDE + view


def sample_parts(sample: int) -> tuple[int, int, int]:
    """(split_no, ref_id, view) of a `sample_id`: its inverse, for reading an export's ids back."""
    pair_part, view = divmod(sample, VIEW_STRIDE)
    split_no, ref = divmod(pair_part, PAIR_STRIDE)
    return split_no, ref, view


def view_file_name(split: str, scene: int, view: int) -> str:
    return f"clevr_remv_{split}_{scene:05d}_v{view:02d}.png"


def tokens(sentence: str) -> list[str]:
    """RefCOCO-style tokens: lower case, punctuation dropped ("The red cube." -> the red cube)."""
    return re.findall(r"[a-z0-9]+", sentence.lower())


def sentence_entry(sentence: str, sent_id: int) -> dict[str, Any]:
    """One entry of a ref's `sentences`, with the four keys REFER and G_REFER read: `raw` (as
    written), `sent` and `tokens` (lower case, punctuation dropped) and `sent_id`."""
    words = tokens(sentence)
    return {"raw": sentence, "sent": " ".join(words), "tokens": words, "sent_id": sent_id}


def mask_polygons(mask: np.ndarray) -> tuple[list[list[float]], bool]:
    """COCO polygons ([x1, y1, x2, y2, ...] per ring, pixel-corner coordinates) around the True pixels of
    `mask`, and whether pycocotools rasterises them back to exactly that mask.

    The rings run through the midpoints between pixel centres (the 0.5 contour of the mask), which
    pycocotools' rasteriser turns back into the same pixels. COCO polygons have no holes, though: where a
    nearer object covers the middle of a farther one, the farther one's hole is filled, and the second
    value is False (the exports count such annotations).
    """
    import contourpy
    from pycocotools import mask as mask_utils

    inside = np.pad(np.asarray(mask, bool), 1).astype(np.float64)
    rings = contourpy.contour_generator(z=inside, line_type="Separate").lines(0.5)
    # -1 undoes the padding, +0.5 moves pixel centres (contour space) to COCO's pixel corners.
    polygons = [[round(float(v), 2) for v in (ring - 0.5).ravel()] for ring in rings if len(ring) >= 4]
    if not polygons:
        return [], False
    height, width = mask.shape
    drawn = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))).astype(bool)
    return polygons, bool(np.array_equal(drawn, mask))


def object_annotations(mask: np.ndarray, shapes: dict[int, str], image: int) -> dict[int, dict[str, Any]]:
    """COCO annotations (RLE via pycocotools) of every object visible in one view, by object id.

    Objects with no pixel in this view get no annotation: COCO has no empty instances.
    """
    from pycocotools import mask as mask_utils

    anns = {}
    for obj, shape in shapes.items():
        binary = np.asfortranarray(mask == obj, dtype=np.uint8)
        if not binary.any():
            continue
        rle = mask_utils.encode(binary)
        anns[obj] = {
            "id": ann_id(image, obj),
            "image_id": image,
            "category_id": CATEGORY_IDS[shape],
            "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": float(mask_utils.area(rle)),
            "bbox": [float(x) for x in mask_utils.toBbox(rle)],
            "iscrowd": 0,
            "object": obj,
        }
    return anns


@dataclass(frozen=True)
class Pair:
    """A referring pair of the scene being exported; `visible` is for the current view (every
    target visible there; always True for a sentence that names nothing)."""

    id: int
    object: int  # the one target; 0 where the sentence names several objects or none (--targets any)
    sentence: str
    visible: bool
    visible_fraction: float = float("nan")  # in the current view; NaN in datasets before schema 3
    targets: tuple[int, ...] = ()  # every object the sentence names, ascending (empty: none)


@dataclass(frozen=True)
class ExportView:
    """One view of one scene, with what an exporter needs to write it."""

    split: str
    split_no: int
    scene: int
    view: int
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) uint8, object ids
    shapes: dict[int, str]  # object id -> shape
    pairs: list[Pair]
    amodal: np.ndarray | None = None  # (10, H, W) bool amodal masks, when the plan asks for them
    objects: dict[int, dict[str, Any]] = field(default_factory=dict)  # object id -> its scene description

    @property
    def image_id(self) -> int:
        return image_id(self.split_no, self.scene, self.view)

    @property
    def file_name(self) -> str:
        return view_file_name(self.split, self.scene, self.view)

    def image_record(self) -> dict[str, Any]:
        h, w = self.mask.shape
        return {"id": self.image_id, "file_name": self.file_name, "width": int(w), "height": int(h),
                "clevr_remv_split": self.split, "scene": self.scene, "view": self.view}


class ExportPlan:
    """Which splits and views of the dataset in `root` to export; checked before any work."""

    def __init__(self, root: Path, views: ViewSpec, splits: Sequence[str] | None) -> None:
        from clevr_remv.store import DatasetReader

        self.reader = DatasetReader(root)
        self.root = Path(root)
        available = self.reader.splits
        self.splits = list(available if splits is None else splits)
        for split in self.splits:
            self.reader.require_split(split)
        empty = [s for s in self.splits if not self.reader.manifest["splits"][s].get("scenes")]
        if empty and len(empty) == len(self.splits):  # a tiny dataset's test split, asked for alone
            raise ValueError(f"nothing to export: no scenes in split {', '.join(map(repr, empty))} of {root}")
        for split in empty:  # still written, as REFER and COCO loaders expect every split's file
            log.warning("split %r of %s has no scenes: its export files are empty", split, root)
        self.split_numbers = {s: available.index(s) + 1 for s in available}
        self.grid = rig_grid(self.reader.manifest)
        self.views = select_views(views, self.grid)
        require_shard_files([path for _, path in self.shards()], self.root)  # not half-way through

    def pairs_not_single(self) -> tuple[int, int]:
        """(pairs that name several objects, pairs that name none) in the chosen splits: the
        sentences of `--targets any` that a one-referent format (REFER) cannot hold."""
        several = none = 0
        for split in self.splits:
            counts = self.reader.ref_table(split).target_count
            several, none = several + int((counts > 1).sum()), none + int((counts == 0).sum())
        return several, none

    @property
    def total_views(self) -> int:
        """Images to write, for the progress bar."""
        scenes = sum(int(self.reader.manifest["splits"][s].get("scenes", 0)) for s in self.splits)
        return scenes * len(self.views)

    def progress_bar(self, enabled: bool) -> Any:
        """A tqdm bar over the views to write (rate and ETA), silent unless `enabled`."""
        from tqdm import tqdm

        return tqdm(total=self.total_views, unit="view", dynamic_ncols=True, smoothing=0.05, disable=not enabled)

    def shards(self) -> list[tuple[str, Path]]:
        """(split, shard path) of every shard to export, in manifest order."""
        return [(split, path) for split in self.splits for path in self.reader.shard_paths(split)]

    def views_of(self, split: str, path: Path) -> Iterator[ExportView]:
        """Every chosen view of every scene of one shard; one image and one mask chunk each."""
        with ShardReader(path, self.root) as shard:
            with shard.reading("scenes and refs"):
                texts, indices, refs = shard.scene_texts(), shard.scene_indices(), shard.ref_table()
            for row, scene in enumerate(json.loads(s) for s in texts):
                objects = {int(o["id"]): o for o in scene["objects"]}
                shapes = {i: o["shape"] for i, o in objects.items()}
                mine = np.flatnonzero(refs.scene == row)
                for view in self.views:
                    # visible_fraction: NaN in datasets before schema 3 (store/refs.py)
                    pairs = [Pair(int(refs.id[k]), int(refs.object[k]), str(refs.expression[k]),
                                  bool(refs.visible[k, view]), float(refs.visible_fraction[k, view]),
                                  refs.target_ids(k)) for k in mine]
                    with shard.reading(f"view {view} of scene row {row}"):
                        pixels = shard.view(row, view, ("image", "mask"))
                        amodal = shard.amodal_masks(row, view) if getattr(self, "amodal", False) else None
                    yield ExportView(split, self.split_numbers[split], int(indices[row]), view,
                                     pixels["image"], pixels["mask"], shapes, pairs, amodal, objects)


ShardWork = Callable[["ExportPlan", str, Path, Path, Callable[[], Any] | None], tuple[int, T]]


def run_shards(plan: ExportPlan, work: ShardWork, staging: Path, workers: int, progress: bool) -> list[T]:
    """`work(plan, split, shard, staging, tick)` for every shard, in `workers` processes; results
    in shard order, so the output does not depend on the number of workers.

    `work` returns (views written, result). Serially it ticks the bar once per view; across
    processes (where a callback cannot travel) the bar advances by a shard at a time.
    """
    jobs = plan.shards()
    results: list[T] = []
    with plan.progress_bar(progress) as bar:
        if workers <= 1 or len(jobs) <= 1:
            for split, path in jobs:
                results.append(work(plan, split, path, staging, lambda: bar.update(1))[1])
            return results
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            futures = [pool.submit(work, plan, split, path, staging, None) for split, path in jobs]
            try:
                for future in futures:
                    views, result = future.result()
                    bar.update(views)
                    results.append(result)
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    return results


def write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"), ensure_ascii=False)


@contextmanager
def staged_directory(out: Path, source: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a hidden sibling directory to write the export into; it becomes `out` only if the
    block succeeds, so OUT is either absent, the previous export, or a complete new one, whatever
    stops the export (an error, a full disk, SIGINT, SIGTERM, SIGKILL: `install_directory`).

    Refuses a non-empty `out` unless `overwrite`, and never replaces the dataset itself. What a
    killed export of `out` left beside it is cleaned up first (`recover_interrupted_export`).
    """
    out, source = Path(out), Path(source)
    recover_interrupted_export(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    resolved = out.resolve()
    if resolved == source.resolve() or resolved in source.resolve().parents:
        raise ValueError(f"--out {out} would replace the dataset {source}; choose another directory")
    if not overwrite:
        refuse_non_empty(out, "--out", "pass --overwrite to replace it")
    tmp = temp_path_for(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        install_directory(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(out.parent)


def _aside(out: Path) -> Path:
    """The name whose temporaries hold the previous `out` when `install_directory` cannot swap."""
    return out.with_name(out.name + ".old")


def install_directory(new: Path, out: Path) -> None:
    """Put the complete folder `new` at `out` in one step, and remove what `out` was.

    Where Linux can swap two folders atomically (renameat2 RENAME_EXCHANGE, local filesystems),
    a kill at any moment leaves `out` old or new. Elsewhere it takes two renames, `out` aside to
    `.OUT.old.tmp-<host>-<pid>`, then `new` onto `out`: a SIGKILL between them leaves no `out`,
    and the next export into it puts the previous one back first (`recover_interrupted_export`).
    """
    if not out.exists():
        os.replace(new, out)
        return
    if exchange_paths(new, out):  # `new` now holds the previous export
        shutil.rmtree(new, ignore_errors=True)
        return
    old = temp_path_for(_aside(out))
    os.replace(out, old)  # a folder cannot be renamed over a non-empty one
    try:
        os.replace(new, out)
    except BaseException:
        if not out.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted_export(out: Path) -> None:
    """Undo what a killed export into `out` left (this host's, their processes gone): put the
    previous export back if it was moved aside and `out` is missing, remove the hidden folders."""
    out = Path(out)
    asides = stale_temporaries_of(_aside(out))
    if asides and not out.exists():
        previous = max(asides, key=lambda path: path.stat().st_mtime)
        os.replace(previous, out)
        asides.remove(previous)
        log.warning("put back the previous export %s, which an export that was killed had moved aside", out)
    for path in [*stale_temporaries_of(out), *asides]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        log.info("removed %s, left by an export that was killed", path)


def write_view(item: ExportView, image_dir: Path) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """Write one view's PNG into `image_dir`; its COCO image record and object annotations."""
    write_png(item.image, image_dir / item.file_name)
    return item.image_record(), object_annotations(item.mask, item.shapes, item.image_id)


def summary(kind: str, plan: ExportPlan, out: Path, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """What an export wrote, kept as OUT/export.json beside the data (provenance and counts)."""
    from clevr_remv import __version__

    return {"format": kind, "generator_version": __version__, "source": str(plan.root.resolve()),
            "out": str(Path(out).resolve()), "grid": plan.grid, "views": plan.views,
            "split_numbers": {s: plan.split_numbers[s] for s in plan.splits}, "splits": counts}
