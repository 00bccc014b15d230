"""Evaluate referring-segmentation predictions on a rendered split, view by view (`clevr-remv evaluate`).

Predictions come in one of two forms:

- an HDF5 file with `ref_id` (P,) int (the dataset's `refs/id`), `view` (P,) int and `mask` (P, H, W)
  bool or uint8 (nonzero = foreground), at the dataset's resolution. `write_predictions` writes one
  from arrays; `PredictionsWriter` appends batch by batch when all masks do not fit in memory:

      from clevr_remv.evaluation.predictions import write_predictions
      write_predictions("pred.h5", ref_ids, views, masks, dataset="out", split="test")  # masks: (P, H, W) bool

  The writers record the dataset's identity and the split (evaluation/predictions.py): a file made for
  another split or dataset is refused, one without that record scored with a warning.

- a folder of PNG masks named `<ref_id>_<view>.png` (nonzero = foreground; for RGB(A) files any
  non-zero colour channel, alpha ignored).

Every (pair, view) whose referent is visible in a chosen view (`refs/visible`) must have a prediction:
a missing one is an error rather than an IoU of 0, since a silent zero would make an interrupted
inference job look like a bad model. Pairs whose referent is not visible in a view are left out of that
view (and counted); predictions for them, or for views not chosen, are ignored. Ground truth is the
union of the objects the sentence names in the view's instance mask (`== refs/object` for the one
referent of the published data; all False for a no-target sentence, which is visible, and so predicted,
in every view), read one (scene, view) chunk at a time and only for the views evaluated. The figures are
computed by `clevr_remv.evaluation.metrics`; with generalised sentences (a split where some sentence
names several objects or none) they include gIoU, cIoU, N-acc and T-acc as ReLA defines them.

Two reference points need no predictions: `oracle` (the ground truth itself: IoU 1, MVR 0) and
`centre-mask` (every view predicted with the targets' mask in the centre view: a model perfect at the
centre that ignores the camera's motion, so its MVR is what parallax alone causes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from clevr_remv.contract import counted
from clevr_remv.data.selection import ViewSpec, select_views
from clevr_remv.evaluation.ground_truth import GroundTruth, load_ground_truth
from clevr_remv.evaluation.metrics import (
    MultiViewReport,
    mask_counts,
    score_views,
)
from clevr_remv.evaluation.predictions import Predictions, check_made_for, open_predictions
from clevr_remv.scene.rig import centre_view
from clevr_remv.store.reader import ShardReader
from clevr_remv.truth.targets import target_mask

log = logging.getLogger("clevr_remv")


BASELINES = ("oracle", "centre-mask")
BREAKDOWNS = ("occlusion", "hops", "targets")  # `--by`: see by_occlusion.py and by_sentence.py


# A predictor returns the mask for pair r (index into GroundTruth) in `view`; `truth(view)` gives
# the pair's ground-truth mask (the union of its targets) in any view of the same scene (the baselines use it).
Predictor = Callable[[int, int, Callable[[int], np.ndarray]], np.ndarray]


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
                 f"is visible in the chosen views, and a no-target sentence in every view, or choose views with "
                 f"--views)",
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


@dataclass(frozen=True)
class Overlaps:
    """Per (pair, evaluated view), (R, len(views)): what every figure is computed from."""

    inter: np.ndarray  # int64 |prediction ∩ truth|
    union: np.ndarray  # int64 |prediction ∪ truth|
    predicted: np.ndarray  # int64 |prediction|: empty or not decides N-acc and T-acc
    include: np.ndarray  # bool: scored there (every target visible; always for a no-target sentence)


def count_overlaps(truth: GroundTruth, views: Sequence[int], predict: Predictor,
                   progress: Callable[[], None] | None = None) -> Overlaps:
    """Intersection, union and predicted pixel counts (R, len(views)) and the `include` table.

    Reads each scene's mask of a view once, and only where some pair of the scene is visible in it.
    `progress` is called once per (scene, view).
    """
    views = list(views)
    include = truth.visible[:, views]
    inter = np.zeros(include.shape, dtype=np.int64)
    union = np.zeros(include.shape, dtype=np.int64)
    predicted = np.zeros(include.shape, dtype=np.int64)
    opened, shard = -1, None

    with ExitStack() as stack:
        for s, row, pairs in truth.scenes():
            if s != opened:
                stack.close()
                shard = stack.enter_context(ShardReader(truth.shard_paths[s], truth.root))
                opened = s
            scene_view = lru_cache(maxsize=None)(lambda v, _shard=shard, _row=row: _shard.mask(_row, v))
            named = {int(r): truth.target_ids(int(r)) for r in pairs}
            for j, view in enumerate(views):
                for r in pairs[include[pairs, j]]:
                    truth_in = _truth_of(scene_view, named[int(r)], (truth.height, truth.width))
                    prediction = np.asarray(predict(int(r), view, truth_in), dtype=bool)
                    inter[r, j], union[r, j] = mask_counts(prediction, truth_in(view))
                    predicted[r, j] = np.count_nonzero(prediction)
                if progress is not None:
                    progress()
    return Overlaps(inter, union, predicted, include)


def _truth_of(scene_view: Callable[[int], np.ndarray], targets: tuple[int, ...],
              shape: tuple[int, int]) -> Callable[[int], np.ndarray]:
    """view -> the pair's ground-truth mask there; a no-target pair's needs no mask read."""
    if not targets:
        return lambda view: np.zeros(shape, dtype=bool)
    return lambda view: target_mask(scene_view(view), targets)


@dataclass(frozen=True)
class Evaluation:
    """A report with what it was computed from."""

    report: MultiViewReport
    source: str  # the predictions path, or "baseline oracle" / "baseline centre-mask"
    split: str
    pairs: int  # pairs in the split
    by_occlusion: list | None = None  # evaluate_occlusion.OcclusionBin per bin, with by="occlusion"
    by_sentence: dict = field(default_factory=dict)  # "hops" / "targets" -> by_sentence.Group per group
    target_pairs: dict[str, int] | None = None  # with generalised sentences: pairs naming none, one, several

    @property
    def generalised(self) -> bool:
        """Some sentence of the split names several objects or none (so gIoU, cIoU, N-acc, T-acc)."""
        return self.report.generalised


def evaluated_views(chosen: Sequence[int], grid: int) -> list[int]:
    """The chosen views plus the centre whenever another view is chosen (MVR needs it), sorted."""
    centre = centre_view(grid)
    views = set(chosen)
    if views - {centre}:
        views.add(centre)
    return sorted(views)


def _breakdowns(by: str | Sequence[str] | None) -> tuple[str, ...]:
    """`by` as a tuple of known breakdowns, in the order given, each once."""
    wanted = () if by is None else (by,) if isinstance(by, str) else tuple(by)
    unknown = [b for b in wanted if b not in BREAKDOWNS]
    if unknown:
        raise ValueError(f"unknown --by {unknown[0]!r} (choose {', '.join(BREAKDOWNS)})")
    return tuple(dict.fromkeys(wanted))


def evaluate(root: Path | str, split: str = "test", predictions: Path | str | None = None,
             baseline: str | None = None, views: ViewSpec | None = None,
             progress: Callable[[int], Callable[[], None]] | None = None,
             by: str | Sequence[str] | None = None) -> Evaluation:
    """Score `predictions` (a file or PNG folder) or a `baseline` on `split` of the dataset in `root`.

    `views`: "center", "corners", "all" or indices; default: the views present in the predictions, or
    the corners and the centre for a baseline. The centre is evaluated as well whenever another view is,
    for MVR. `progress(total)` returns a callback called once per (scene, view). `by` (one of BREAKDOWNS
    or several) adds every figure per group: "occlusion" per bin of the targets' visible fraction
    (by_occlusion.py), "hops" per relation count of the sentence's program, "targets" per number of
    objects it names (by_sentence.py).
    """
    if (predictions is None) == (baseline is None):
        raise ValueError("give either predictions or a baseline (oracle, centre-mask)")
    breakdowns = _breakdowns(by)
    truth = load_ground_truth(root, split)
    if "occlusion" in breakdowns and not truth.measured_fraction:
        raise ValueError(f"{truth.root} has no refs/visible_fraction (rendered before schema version 3), "
                         f"so --by occlusion cannot bin its pairs; render it again with this version")
    sentence_groups = {}
    if breakdowns:  # before any mask is read: an unreadable program must not cost the evaluation
        from clevr_remv.evaluation.by_sentence import group_pairs

        sentence_groups = {b: group_pairs(b, truth) for b in breakdowns if b != "occlusion"}
    with ExitStack() as stack:
        if predictions is not None:
            preds = open_predictions(predictions)
            stack.callback(preds.close)
            if len(preds) == 0:
                raise ValueError(f"{preds.source}: no predictions in it")
            unchecked = check_made_for(preds, root, split)
            check_fit(preds, truth)
            chosen = select_views(sorted(set(preds.views.tolist())) if views is None else views, truth.grid)
            to_score = evaluated_views(chosen, truth.grid)
            predict = file_predictor(preds, truth, check_complete(preds, truth, to_score))
            if unchecked:
                log.warning("%s", unchecked)
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
        log.info("%s: %s in %s of %s, views %s", source, counted(len(truth.ids), "pair"), counted(n_scenes, "scene"), split,
                 ",".join(map(str, to_score)))
        tick = progress(n_scenes * len(to_score)) if progress is not None else None
        counts = count_overlaps(truth, to_score, predict, tick)
    targeted = truth.target_count > 0 if truth.generalised else None
    report = score_views(counts.inter, counts.union, counts.include, to_score, truth.grid, chosen=chosen,
                         predicted=counts.predicted, targeted=targeted)
    bins = None
    if "occlusion" in breakdowns:
        from clevr_remv.evaluation.by_occlusion import score_by_occlusion

        bins = score_by_occlusion(counts.inter, counts.union, counts.include, truth.fraction[:, to_score], to_score,
                                  truth.grid, chosen, predicted=counts.predicted, targeted=targeted)
    by_sentence = {}
    if sentence_groups:
        from clevr_remv.evaluation.by_sentence import score_groups

        by_sentence = {kind: score_groups(grouping, counts.inter, counts.union, counts.predicted, counts.include,
                                          targeted, to_score, truth.grid, chosen)
                       for kind, grouping in sentence_groups.items()}
    return Evaluation(report=report, source=source, split=split, pairs=len(truth.ids), by_occlusion=bins,
                      by_sentence=by_sentence, target_pairs=_target_pairs(truth) if truth.generalised else None)


def _target_pairs(truth: GroundTruth) -> dict[str, int]:
    """How many pairs of the split name no object, one, several (the report's first line)."""
    count = truth.target_count
    return {"none": int((count == 0).sum()), "one": int((count == 1).sum()), "several": int((count >= 2).sum())}
