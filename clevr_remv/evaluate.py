"""Evaluate referring-segmentation predictions on a rendered split, view by view (`clevr-remv evaluate`).

Predictions come in one of two forms:

- an HDF5 file with `ref_id` (P,) int (the dataset's `refs/id`), `view` (P,) int and `mask` (P, H, W)
  bool or uint8 (nonzero = foreground), at the dataset's resolution. `write_predictions` writes one
  from arrays; `PredictionsWriter` appends batch by batch when all masks do not fit in memory:

      from clevr_remv.evaluate import write_predictions
      write_predictions("pred.h5", ref_ids, views, masks)     # masks: (P, H, W) bool

- a folder of PNG masks named `<ref_id>_<view>.png` (nonzero = foreground; for RGB(A) files any
  non-zero colour channel, alpha ignored).

Every (pair, view) whose referent is visible in a chosen view (`refs/visible`) must have a prediction:
a missing one is an error rather than an IoU of 0, since a silent zero would make an interrupted
inference job look like a bad model. Pairs whose referent is not visible in a view are left out of that
view (and counted); predictions for them, or for views not chosen, are ignored. Ground truth is the
view's instance mask == the referent's object id, read one (scene, view) chunk at a time and only for
the views evaluated. The figures are computed by `clevr_remv.metrics`.

Two reference points need no predictions: `oracle` (the ground truth itself: IoU 1, MVR 0) and
`centre-mask` (every view predicted with the referent's mask in the centre view: a model perfect at the
centre that ignores the camera's motion, so its MVR is what parallax alone causes).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clevr_remv.loader import ViewSpec, rig_grid, select_views
from clevr_remv.metrics import METRIC_KEYS, THRESHOLDS, MultiViewReport, mask_counts, score_views, view_distance
from clevr_remv.outputs import PICTURE_SUFFIXES, check_suffix
from clevr_remv.rig import centre_view, view_position
from clevr_remv.store import DatasetReader, atomic_path, write_json_atomic
from clevr_remv.store.reader import open_shard, reading_shard

log = logging.getLogger("clevr_remv")

BASELINES = ("oracle", "centre-mask")
PNG_NAME = re.compile(r"^(\d+)_(\d+)\.png$", re.IGNORECASE)

# A predictor returns the mask for pair r (index into GroundTruth) in `view`; `truth(view)` gives
# the referent's ground-truth mask in any view of the same scene (the baselines use it).
Predictor = Callable[[int, int, Callable[[int], np.ndarray]], np.ndarray]


# ------------------------------------------------------------------------------ writing predictions


class PredictionsWriter:
    """Write a predictions file batch by batch, atomically (the file appears complete or not at all).

        with PredictionsWriter("pred.h5", height=320, width=480) as out:
            for batch in loader:
                out.add(batch_ref_ids, batch_views, batch_masks)   # masks (B, H, W) bool/uint8

    Masks are stored as uint8 0/1, one mask per chunk, gzip level 1: about 1.3 kB per 480x320 mask,
    and 2-3x faster to write and read back than level 4, which only halves an already small file.
    Ids (int64, as `refs/id`) and views (int32) are compressed in chunks of `ID_CHUNK`, so the file is
    the masks' compressed size plus ~5 kB (uncompressed 65,536-element chunks made 40 masks 1 MB).
    Small batches (one sample at a time is fine) are buffered and written `BUFFER_PIXELS` at a time:
    growing the HDF5 datasets for every mask cost ~15 ms each, ten times the mask's own write.
    """

    BUFFER_PIXELS = 1 << 25  # 32 MB of buffered masks (about 218 masks of 480x320)
    ID_CHUNK = 4096  # ids and views per chunk: compressed, a part-filled chunk costs a few bytes

    def __init__(self, path: Path | str, height: int, width: int) -> None:
        self.path = Path(path)
        self.height, self.width = int(height), int(width)
        self._stack: ExitStack | None = None
        self._file: h5py.File | None = None
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0

    def __enter__(self) -> "PredictionsWriter":
        stack = ExitStack()
        tmp = stack.enter_context(atomic_path(self.path))
        f = stack.enter_context(h5py.File(tmp, "w", libver=("v110", "latest")))  # small metadata
        for name, dtype in (("ref_id", np.int64), ("view", np.int32)):  # the dataset's refs/id, a view index
            f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(self.ID_CHUNK,),
                             compression="gzip", compression_opts=1, shuffle=True)
        f.create_dataset("mask", shape=(0, self.height, self.width), maxshape=(None, self.height, self.width),
                         dtype=np.uint8, chunks=(1, self.height, self.width), compression="gzip",
                         compression_opts=1)
        self._stack, self._file = stack, f
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        assert self._stack is not None
        if exc[0] is None:
            try:
                self._flush()
            except BaseException as error:  # the temporary file is removed, `path` left as it was
                if not self._stack.__exit__(type(error), error, error.__traceback__):
                    raise
                return None
        return self._stack.__exit__(*exc)

    def add(self, ref_ids: Sequence[int] | np.ndarray, views: Sequence[int] | np.ndarray,
            masks: np.ndarray) -> None:
        """Append B predictions: ref ids (B,), views (B,), masks (B, H, W) (nonzero = foreground)."""
        if self._file is None:
            raise RuntimeError("PredictionsWriter.add outside its `with` block")
        ref_ids = np.asarray(ref_ids)
        views = np.asarray(views)
        masks = np.asarray(masks)
        if masks.ndim != 3 or masks.shape[1:] != (self.height, self.width):
            raise ValueError(f"masks must be (B, {self.height}, {self.width}), got {masks.shape}")
        if not (ref_ids.shape == views.shape == masks.shape[:1]):
            raise ValueError(f"ref_ids {ref_ids.shape}, views {views.shape} and masks {masks.shape} must "
                             f"have one entry per prediction")
        for name, values in (("ref_ids", ref_ids), ("views", views)):
            if values.size and not np.issubdtype(values.dtype, np.integer):
                raise ValueError(f"{name} must be integers, got {values.dtype}")
        small = views.astype(np.int32)  # a view index; nothing is lost unless it is none
        if not np.array_equal(small, views):
            raise ValueError(f"views must be view indices, got {views[small != views][0]}")
        # Copies (astype, !=), so a caller may reuse its arrays for the next batch.
        self._buffer.append((ref_ids.astype(np.int64), small, (masks != 0).view(np.uint8)))
        self._buffered += masks.size
        if self._buffered >= self.BUFFER_PIXELS:
            self._flush()

    def _flush(self) -> None:
        assert self._file is not None
        if not self._buffer:
            return
        columns = [parts[0] if len(parts) == 1 else np.concatenate(parts) for parts in zip(*self._buffer)]
        self._buffer, self._buffered = [], 0
        n, b = self._file["ref_id"].shape[0], len(columns[0])
        for name, values in zip(("ref_id", "view", "mask"), columns):
            self._file[name].resize(n + b, axis=0)
            self._file[name][n:] = values


def write_predictions(path: Path | str, ref_ids: Sequence[int] | np.ndarray, views: Sequence[int] | np.ndarray,
                      masks: np.ndarray) -> Path:
    """Write predictions for `clevr-remv evaluate`: mask i is the prediction for pair `ref_ids[i]`
    (the dataset's `refs/id`) in view `views[i]`; masks (P, H, W) bool or uint8 at the dataset's size."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (P, H, W), got shape {masks.shape}")
    with PredictionsWriter(path, masks.shape[1], masks.shape[2]) as out:
        out.add(ref_ids, views, masks)
    return Path(path)


# ------------------------------------------------------------------------------ reading predictions


class Predictions:
    """Predictions read from an HDF5 file or a PNG folder: ids and views up front, masks on demand."""

    def __init__(self, source: Path, ref_ids: np.ndarray, views: np.ndarray) -> None:
        self.source = source
        self.ref_ids = ref_ids.astype(np.int64)
        self.views = views.astype(np.int64)

    def __len__(self) -> int:
        return len(self.ref_ids)

    def sizes(self) -> np.ndarray:
        """(P, 2) height and width of every mask."""
        raise NotImplementedError

    def mask(self, row: int) -> np.ndarray:
        """Prediction `row` as a boolean (H, W) mask."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def row_of(self) -> dict[tuple[int, int], int]:
        """(ref_id, view) -> row."""
        return {(int(r), int(v)): i for i, (r, v) in enumerate(zip(self.ref_ids, self.views))}


class H5Predictions(Predictions):
    def __init__(self, path: Path) -> None:
        try:
            self._file = h5py.File(path, "r")
        except OSError as e:
            raise OSError(f"{path}: not a readable HDF5 file ({e})") from None
        try:
            missing = [k for k in ("ref_id", "view", "mask") if not isinstance(self._file.get(k), h5py.Dataset)]
            if missing:
                raise ValueError(f"{path}: no dataset {', '.join(missing)} (expected ref_id, view, mask)")
            ref_ids, views, self._mask = self._file["ref_id"], self._file["view"], self._file["mask"]
            for name, ds in (("ref_id", ref_ids), ("view", views), ("mask", self._mask)):
                if not (np.issubdtype(ds.dtype, np.integer) or ds.dtype == np.bool_):
                    raise ValueError(f"{path}: {name} must be integer or bool, got {ds.dtype}")
            if ref_ids.ndim != 1 or views.shape != ref_ids.shape or self._mask.ndim != 3 \
                    or self._mask.shape[0] != ref_ids.shape[0]:
                raise ValueError(f"{path}: expected ref_id (P,), view (P,), mask (P, H, W); got {ref_ids.shape}, "
                                 f"{views.shape}, {self._mask.shape}")
            super().__init__(path, ref_ids[()], views[()])
        except BaseException:
            self._file.close()
            raise

    def sizes(self) -> np.ndarray:
        return np.tile(np.array(self._mask.shape[1:], dtype=np.int64), (len(self), 1))

    def mask(self, row: int) -> np.ndarray:
        return self._mask[row] != 0

    def close(self) -> None:
        self._file.close()


class PngPredictions(Predictions):
    def __init__(self, folder: Path) -> None:
        pngs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
        badly_named = [p.name for p in pngs if not PNG_NAME.match(p.name)]
        if badly_named:
            raise ValueError(f"{folder}: {len(badly_named)} PNG file(s) not named <ref_id>_<view>.png "
                             f"(first: {badly_named[0]})")
        keys = np.array([[int(x) for x in PNG_NAME.match(p.name).groups()] for p in pngs],  # type: ignore[union-attr]
                        dtype=np.int64).reshape(-1, 2)
        self._paths = pngs
        super().__init__(folder, keys[:, 0], keys[:, 1])

    def sizes(self) -> np.ndarray:
        from PIL import Image

        out = np.zeros((len(self), 2), dtype=np.int64)
        for i, path in enumerate(self._paths):
            with Image.open(path) as im:  # reads the header only
                out[i] = im.height, im.width
        return out

    def mask(self, row: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self._paths[row]) as im:
            if im.mode == "P":
                im = im.convert("RGBA")
            pixels = np.asarray(im)
            has_alpha = im.mode in ("LA", "La", "RGBA", "RGBa", "PA")
        if pixels.ndim == 3:
            return (pixels[..., :-1] if has_alpha else pixels).any(axis=2)
        return pixels != 0


def open_predictions(path: Path | str) -> Predictions:
    """An HDF5 predictions file or a folder of `<ref_id>_<view>.png` masks."""
    path = Path(path)
    if path.is_dir():
        return PngPredictions(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such predictions file or folder")
    return H5Predictions(path)


# ------------------------------------------------------------------------------ ground truth


@dataclass(frozen=True)
class GroundTruth:
    """The referring pairs of one split, one entry per pair (R), and where their masks are."""

    root: Path
    split: str
    grid: int
    height: int
    width: int
    shard_paths: tuple[Path, ...]
    ids: np.ndarray  # (R,) int64 refs/id
    shard: np.ndarray  # (R,) index into shard_paths
    row: np.ndarray  # (R,) scene row in that shard
    object: np.ndarray  # (R,) referent, 1-based
    visible: np.ndarray  # (R, V) bool
    fraction: np.ndarray | None = None  # (R, V) float32 refs/visible_fraction; None in datasets without it

    @property
    def centre(self) -> int:
        return centre_view(self.grid)

    def scenes(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(shard, row, pair indices) for every scene with pairs, shard by shard."""
        for s in range(len(self.shard_paths)):
            in_shard = np.flatnonzero(self.shard == s)
            for row in np.unique(self.row[in_shard]):
                yield s, int(row), in_shard[self.row[in_shard] == row]


def load_ground_truth(root: Path | str, split: str) -> GroundTruth:
    """Index the pairs of `split` from the small `refs/*` datasets of its shards (no pixels read)."""
    reader = DatasetReader(root)
    reader.require_split(split)
    grid = rig_grid(reader.manifest)
    paths = tuple(reader.shard_paths(split))
    parts: dict[str, list[np.ndarray]] = {"ids": [], "shard": [], "row": [], "object": [], "visible": []}
    fractions: list[np.ndarray | None] = []
    height = width = 0
    for s, path in enumerate(paths):
        with open_shard(path, reader.root) as f:
            with reading_shard(path, reader.root, "refs"):
                _, views, height, width = f["masks"].shape
                g = f["refs"]
                parts["ids"].append(g["id"][()].astype(np.int64))
                parts["shard"].append(np.full(g["id"].shape[0], s, dtype=np.int64))
                parts["row"].append(g["scene"][()].astype(np.int64))
                parts["object"].append(g["object"][()].astype(np.int64))
                parts["visible"].append(g["visible"][()].astype(bool))
                fractions.append(g["visible_fraction"][()] if "visible_fraction" in g else None)
            if views != grid * grid:
                raise ValueError(f"{path}: {views} views, but the manifest says a {grid}x{grid} rig")
    if not parts["ids"] or sum(len(a) for a in parts["ids"]) == 0:
        raise ValueError(f"split {split!r} of {reader.root} has no referring pairs to evaluate")
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    fraction = None if any(f is None for f in fractions) else np.concatenate(fractions)
    return GroundTruth(root=reader.root, split=split, grid=grid, height=int(height), width=int(width),
                       shard_paths=paths, fraction=fraction, **arrays)


# ------------------------------------------------------------------------------ checking predictions


def _fail_if(bad: np.ndarray, source: Path, what: str, first: Callable[[int], str]) -> None:
    """One-line ValueError naming how many entries are bad and the first of them."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{source}: {int(bad.sum())} {what} (first: {first(i)})")


def check_fit(preds: Predictions, truth: GroundTruth) -> None:
    """Predictions that cannot belong to this dataset: views outside the rig, unknown pairs,
    duplicates, masks of the wrong size (in that order; the first kind found is reported)."""
    n_views = truth.grid * truth.grid
    rid, view = preds.ref_ids, preds.views
    _fail_if((view < 0) | (view >= n_views), preds.source,
             f"prediction(s) for a view outside the {truth.grid}x{truth.grid} rig (views 0..{n_views - 1})",
             lambda i: f"ref_id {rid[i]}, view {view[i]}")
    _fail_if(~np.isin(rid, truth.ids), preds.source,
             f"prediction(s) with a ref_id that is not a pair of the {truth.split!r} split of {truth.root}",
             lambda i: f"ref_id {rid[i]}, view {view[i]}")
    keys = rid * n_views + view
    _, first_rows = np.unique(keys, return_index=True)
    repeated = np.ones(len(keys), dtype=bool)
    repeated[first_rows] = False
    _fail_if(repeated, preds.source, "duplicate prediction(s) (the same ref_id and view again)",
             lambda i: f"ref_id {rid[i]}, view {view[i]}, rows {int(np.flatnonzero(keys == keys[i])[0])} and {i}")
    sizes = preds.sizes()
    _fail_if((sizes != (truth.height, truth.width)).any(axis=1), preds.source,
             f"mask(s) of the wrong size (the dataset's views are {truth.height} high x {truth.width} wide)",
             lambda i: f"ref_id {rid[i]}, view {view[i]}: {sizes[i, 0]} x {sizes[i, 1]}")


def check_complete(preds: Predictions, truth: GroundTruth, views: Sequence[int]) -> dict[tuple[int, int], int]:
    """Every (pair, view) to evaluate has a prediction; returns (ref_id, view) -> row.

    The centre is checked first with its own message when other views are evaluated: MVR divides each
    view's score by the centre's over the same pairs.
    """
    n_views = truth.grid * truth.grid
    predicted = preds.ref_ids * n_views + preds.views

    def missing(view: int) -> np.ndarray:
        return truth.visible[:, view] & ~np.isin(truth.ids * n_views + view, predicted)

    c = truth.centre
    if any(v != c for v in views):
        others = truth.visible[:, [v for v in views if v != c]].any(axis=1)
        _fail_if(missing(c) & others, preds.source,
                 f"pair(s) have no prediction for the centre view {c}, which MVR compares every view with",
                 lambda r: f"ref_id {truth.ids[r]}")
    for view in views:
        _fail_if(missing(view), preds.source,
                 f"pair(s) visible in view {view} have no prediction there (predict every pair whose referent "
                 f"is visible in the chosen views, or choose views with --views)",
                 lambda r: f"ref_id {truth.ids[r]}, view {view}")
    return preds.row_of()


def file_predictor(preds: Predictions, truth: GroundTruth, rows: dict[tuple[int, int], int]) -> Predictor:
    return lambda r, view, _truth: preds.mask(rows[(int(truth.ids[r]), view)])


def baseline_predictor(name: str, truth: GroundTruth) -> Predictor:
    """`oracle`: the ground truth; `centre-mask`: the referent's centre-view mask in every view."""
    if name == "oracle":
        return lambda r, view, truth_mask: truth_mask(view)
    if name == "centre-mask":
        return lambda r, view, truth_mask: truth_mask(truth.centre)
    raise ValueError(f"unknown baseline {name!r} (choose {', '.join(BASELINES)})")


# ------------------------------------------------------------------------------ evaluation


def count_overlaps(truth: GroundTruth, views: Sequence[int], predict: Predictor,
                   progress: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection and union counts (R, len(views)) and the `include` table (referent visible).

    Reads each scene's mask of a view once, and only where some pair of the scene is visible in it.
    `progress` is called once per (scene, view).
    """
    views = list(views)
    include = truth.visible[:, views]
    inter = np.zeros(include.shape, dtype=np.int64)
    union = np.zeros(include.shape, dtype=np.int64)
    opened, masks = -1, None

    def read_mask(s: int, row: int, view: int) -> np.ndarray:
        with reading_shard(truth.shard_paths[s], truth.root, f"masks[{row}, {view}]"):
            return masks[row, view]

    with ExitStack() as stack:
        for s, row, pairs in truth.scenes():
            if s != opened:
                stack.close()
                path = truth.shard_paths[s]
                with reading_shard(path, truth.root):
                    masks = stack.enter_context(open_shard(path, truth.root))["masks"]
                opened = s
            scene_view = lru_cache(maxsize=None)(lambda v, _s=s, _row=row: read_mask(_s, _row, v))
            for j, view in enumerate(views):
                for r in pairs[include[pairs, j]]:
                    obj = truth.object[r]
                    target = scene_view(view) == obj
                    prediction = predict(int(r), view, lambda v: scene_view(v) == obj)
                    inter[r, j], union[r, j] = mask_counts(prediction, target)
                if progress is not None:
                    progress()
    return inter, union, include


@dataclass(frozen=True)
class Evaluation:
    """A report with what it was computed from."""

    report: MultiViewReport
    source: str  # the predictions path, or "baseline oracle" / "baseline centre-mask"
    split: str
    pairs: int  # pairs in the split
    by_occlusion: list | None = None  # evaluate_occlusion.OcclusionBin per bin, with by="occlusion"


def evaluated_views(chosen: Sequence[int], grid: int) -> list[int]:
    """The chosen views plus the centre whenever another view is chosen (MVR needs it), sorted."""
    centre = centre_view(grid)
    views = set(chosen)
    if views - {centre}:
        views.add(centre)
    return sorted(views)


def evaluate(root: Path | str, split: str = "test", predictions: Path | str | None = None,
             baseline: str | None = None, views: ViewSpec | None = None,
             progress: Callable[[int], Callable[[], None]] | None = None, by: str | None = None) -> Evaluation:
    """Score `predictions` (a file or PNG folder) or a `baseline` on `split` of the dataset in `root`.

    `views`: "center", "corners", "all" or indices; default: the views present in the predictions, or
    the corners and the centre for a baseline. The centre is evaluated as well whenever another view is,
    for MVR. `progress(total)` returns a callback called once per (scene, view). `by="occlusion"` adds
    every figure per bin of the referent's visible fraction (clevr_remv/evaluate_occlusion.py).
    """
    if (predictions is None) == (baseline is None):
        raise ValueError("give either predictions or a baseline (oracle, centre-mask)")
    if by not in (None, "occlusion"):
        raise ValueError(f"unknown --by {by!r} (choose occlusion)")
    truth = load_ground_truth(root, split)
    if by == "occlusion" and truth.fraction is None:
        raise ValueError(f"{truth.root} has no refs/visible_fraction (rendered before schema version 3), "
                         f"so --by occlusion cannot bin its pairs; render it again with this version")
    with ExitStack() as stack:
        if predictions is not None:
            preds = open_predictions(predictions)
            stack.callback(preds.close)
            if len(preds) == 0:
                raise ValueError(f"{preds.source}: no predictions in it")
            check_fit(preds, truth)
            chosen = select_views(sorted(set(preds.views.tolist())) if views is None else views, truth.grid)
            to_score = evaluated_views(chosen, truth.grid)
            predict = file_predictor(preds, truth, check_complete(preds, truth, to_score))
            source = str(preds.source)
        else:
            assert baseline is not None
            predict = baseline_predictor(baseline, truth)
            chosen = select_views("corners" if views is None else views, truth.grid)
            if views is None:
                chosen = evaluated_views(chosen, truth.grid)
            to_score = evaluated_views(chosen, truth.grid)
            source = f"baseline {baseline}"
        n_scenes = sum(1 for _ in truth.scenes())
        log.info("%s: %d pairs in %d scenes of %s, views %s", source, len(truth.ids), n_scenes, split,
                 ",".join(map(str, to_score)))
        tick = progress(n_scenes * len(to_score)) if progress is not None else None
        inter, union, include = count_overlaps(truth, to_score, predict, tick)
    report = score_views(inter, union, include, to_score, truth.grid, chosen=chosen)
    bins = None
    if by == "occlusion":
        from clevr_remv.evaluate_occlusion import score_by_occlusion

        bins = score_by_occlusion(inter, union, include, truth.fraction[:, to_score], to_score, truth.grid, chosen)
    return Evaluation(report=report, source=source, split=split, pairs=len(truth.ids), by_occlusion=bins)


# ------------------------------------------------------------------------------ reporting


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def report_json(evaluation: Evaluation) -> dict[str, Any]:
    """The `--json` document; IoUs and P@K as fractions 0..1, MVR as a fraction (0.022 = 2.2 %), NaN as null."""
    r = evaluation.report
    extra = {}
    if evaluation.by_occlusion is not None:
        from clevr_remv.evaluate_occlusion import bins_json

        extra["by_occlusion"] = bins_json(evaluation.by_occlusion)
    return extra | {
        "views": {str(v): {k: _finite(x) if isinstance(x, float) else x for k, x in s.as_dict().items()}
                  for v, s in r.views.items()},
        "mean": {k: _finite(v) for k, v in r.mean.items()},
        "std": {k: _finite(v) for k, v in r.std.items()},
        "mvr_oiou": _finite(r.mvr_oiou),
        "mvr_miou": _finite(r.mvr_miou),
        "chosen_views": list(r.chosen),
        "centre_view": centre_view(r.grid),
        "grid": r.grid,
        "split": evaluation.split,
        "source": evaluation.source,
    }


def write_report_json(evaluation: Evaluation, path: Path | str) -> None:
    write_json_atomic(Path(path), report_json(evaluation))


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.2f}"


def format_report(evaluation: Evaluation) -> str:
    """The printed table: one row per view (figures in %), mean and std over the chosen views, MVR."""
    r = evaluation.report
    headers = ["view", "row,col", "dist", "pairs", "left out", *(f"P@{k:g}" for k in THRESHOLDS), "mIoU", "oIoU"]
    rows: list[list[str]] = []
    for v, s in sorted(r.views.items()):
        row, col = view_position(v, r.grid)
        figures = s.as_dict()
        mark = "" if v in r.chosen else "*"
        rows.append([f"{v}{mark}", f"{row},{col}", str(view_distance(v, r.grid)), str(s.pairs), str(s.left_out),
                     *(_pct(float(figures[k])) for k in METRIC_KEYS)])
    for name, figures in (("mean", r.mean), ("std", r.std)):
        rows.append([name, "", "", "", "", *(_pct(figures[k]) for k in METRIC_KEYS)])
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(headers)]
    lines = [f"{evaluation.source} on {evaluation.split} ({evaluation.pairs} pairs, {r.grid}x{r.grid} rig); "
             f"figures in %"]
    lines.append("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    for i, x in enumerate(rows):
        if i == len(r.views):
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(c.rjust(w) for c, w in zip(x, widths)))
    lines.append(f"mean and std over the {len(r.chosen)} chosen view(s)"
                 + ("; * centre view, evaluated as MVR's reference only" if len(r.chosen) < len(r.views) else ""))
    if set(r.views) == {centre_view(r.grid)}:
        lines.append("MVR: n/a (only the centre view evaluated)")
    else:
        lines.append(f"MVR (overall IoU): {_pct(r.mvr_oiou)} %   MVR (mean IoU): {_pct(r.mvr_miou)} %")
    if evaluation.by_occlusion is not None:
        from clevr_remv.evaluate_occlusion import format_bins

        lines += ["", format_bins(evaluation.by_occlusion, r.chosen)]
    return "\n".join(lines)


def plot_report(evaluation: Evaluation, path: Path | str) -> None:
    """Overall IoU over the N×N view grid as a heat map (views not evaluated blank), written atomically
    as PNG, SVG or PDF after the suffix of `path`; with `--by occlusion`, overall IoU against the
    referent's visible fraction instead."""
    path = Path(path)
    fmt = check_suffix(path, PICTURE_SUFFIXES, "plot_report")
    if evaluation.by_occlusion is not None:  # --by occlusion: overall IoU against the visible fraction
        from clevr_remv.evaluate_occlusion import plot_bins

        plot_bins(evaluation.by_occlusion, f"Overall IoU by visible fraction: {evaluation.source}\n"
                  f"{evaluation.split}, views {','.join(map(str, evaluation.report.chosen))}", path, fmt)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = evaluation.report
    grid = np.full((r.grid, r.grid), np.nan)
    for v, s in r.views.items():
        grid[view_position(v, r.grid)] = s.oiou
    values = grid[np.isfinite(grid)]
    high = float(values.max()) if values.size else 1.0
    low = min(float(values.min()) if values.size else 0.0, high - 0.05)  # a flat map keeps a readable scale
    size = 1.6 + 0.55 * r.grid
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=low, vmax=high)
    for (i, j), value in np.ndenumerate(grid):
        if math.isfinite(value):
            shade = (value - low) / (high - low)
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8 if r.grid > 5 else 10,
                    color="black" if shade > 0.6 else "white")
    ax.set_xticks(range(r.grid))
    ax.set_yticks(range(r.grid))
    ax.set_xlabel("view column")
    ax.set_ylabel("view row")
    fig.colorbar(image, ax=ax, label="overall IoU")
    mvr = "n/a" if not math.isfinite(r.mvr_oiou) else f"{100 * r.mvr_oiou:.2f} %"
    ax.set_title(f"Overall IoU per view: {evaluation.source}\n{evaluation.split}, MVR (oIoU) {mvr}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    plt.close(fig)
