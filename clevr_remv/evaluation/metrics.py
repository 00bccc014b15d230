"""Referring-segmentation metrics across light-field views (docs/evaluation.md).

Pure NumPy, so the figures can be checked by hand and reused on any model's output:

- IoU of one (pair, view): |prediction ∩ target| / |prediction ∪ target|.
- P@K, K in 0.5 … 0.9: the share of pairs whose IoU is **at least** K (IoU = 0.5 exactly counts at
  K = 0.5, as in LAVT's and CRIS's evaluation code, which compare with `>=`).
- mean IoU: the average of the per-pair IoUs (every pair weighs the same);
  overall IoU: Σ intersections / Σ unions (large objects weigh more).
- MVR (Multi-View Robustness) = −Σ_{(u,v) ≠ centre} Q_uv · ln Q_uv / (|u − u_c| + |v − v_c|),
  Q_uv = score(view) / score(centre) over the same pairs; natural logarithm, Manhattan view distance,
  the sum over the evaluated non-centre views. 0 when every view scores like the centre; the thesis'
  LAVT figures (centre 0.9472, corners 0.8755 0.8945 0.9204 0.9270) give 0.0220 (2.20 %).

"Over the same pairs": a pair whose referent is not visible in a view (`refs/visible` false) is left
out of that view's figures, and out of the centre figure that view is divided by, so Q compares the
model on exactly one set of pairs. `score_views` takes the per-(pair, view) counts and an `include`
table and does that bookkeeping.

Generalised sentences (`--targets any`: one object, several or none; GRES, Liu, Ding and Jiang, CVPR
2023) are scored as ReLA's evaluator does (henghuiding/ReLA, gres_model/evaluation/refer_evaluation.py,
`ReferEvaluator.evaluate`), the target mask being the union of the named objects (empty for none):

- gIoU: the mean of the per-sentence IoUs, a no-target sentence scoring 1 when its prediction is empty
  and 0 otherwise. That is `mean_iou` as it stands: an empty prediction of an empty target has an empty
  union, which `iou` scores 1, and any pixel predicted for it gives intersection 0 over a union > 0.
- cIoU: Σ intersections / Σ unions over every sentence, no-target ones included (their false-positive
  pixels add to the union, nothing to the intersection): `overall_iou` as it stands.
- N-acc = TP / (TP + FN), ReLA's positives being the no-target sentences: the share of no-target
  sentences predicted empty. T-acc = TN / (TN + FP): the share of targeted sentences predicted
  non-empty. A mask-only model "predicts no target" by predicting no pixel.
- P@K: over the targeted sentences only (ReLA's `not_empty_count`).

So on single-target data every figure is what it was; `score_view` adds N-acc and T-acc (and restricts
P@K to the targeted pairs) when it is told which pairs name a target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clevr_remv.scene.rig import centre_view, view_position

# Written out rather than computed (0.5 + 0.1·i gives 0.6000000000000001), so an IoU of exactly
# 7/10 (which division rounds to the same double as the literal 0.7) is a hit at K = 0.7.
THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)


def precision_key(k: float) -> str:
    """The name of P@K in reports and JSON: `p@0.5` … `p@0.9`."""
    return f"p@{k:g}"


METRIC_KEYS: tuple[str, ...] = (*(precision_key(k) for k in THRESHOLDS), "miou", "oiou")
# With generalised sentences: the same (P@K over targeted pairs only), gIoU and cIoU under their GRES names
# (equal to mIoU and oIoU, kept so that readers of `miou`/`oiou` keep working), N-acc and T-acc.
GENERALISED_KEYS: tuple[str, ...] = (*METRIC_KEYS, "giou", "ciou", "n_acc", "t_acc")
_HEADERS = {"miou": "mIoU", "oiou": "oIoU", "giou": "gIoU", "ciou": "cIoU", "n_acc": "N-acc", "t_acc": "T-acc",
            **{precision_key(k): f"P@{k:g}" for k in THRESHOLDS}}


def metric_keys(generalised: bool) -> tuple[str, ...]:
    """The figures a report holds (its JSON keys, its mean and std): METRIC_KEYS, or GENERALISED_KEYS."""
    return GENERALISED_KEYS if generalised else METRIC_KEYS


def table_columns(generalised: bool) -> list[tuple[str, str]]:
    """(key, header) of the figures a printed table shows: P@K, mIoU, oIoU; with generalised sentences
    P@K, gIoU, cIoU, N-acc, T-acc (mIoU and oIoU would repeat gIoU and cIoU)."""
    keys = [*METRIC_KEYS[:-2], "giou", "ciou", "n_acc", "t_acc"] if generalised else list(METRIC_KEYS)
    return [(key, _HEADERS[key]) for key in keys]


def mask_counts(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersection and union pixel counts of boolean masks (..., H, W) → two int64 arrays (...)."""
    prediction = np.asarray(prediction, dtype=bool)
    target = np.asarray(target, dtype=bool)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    if prediction.ndim < 2:
        raise ValueError(f"masks must be (..., H, W), got shape {prediction.shape}")
    # np.count_nonzero over a whole mask is ~6x faster than .sum() or count_nonzero(axis=...):
    # 0.2 ms instead of 1.3 ms at 480x320, which is most of `evaluate`'s time.
    lead, pixels = prediction.shape[:-2], prediction.shape[-2] * prediction.shape[-1]
    both = np.logical_and(prediction, target).reshape(-1, pixels)
    either = np.logical_or(prediction, target).reshape(-1, pixels)
    inter = np.fromiter((np.count_nonzero(m) for m in both), dtype=np.int64, count=len(both)).reshape(lead)
    union = np.fromiter((np.count_nonzero(m) for m in either), dtype=np.int64, count=len(either)).reshape(lead)
    return inter, union


def iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Per-pair IoU. An empty union (empty prediction of an empty target) is a perfect 1.0.

    A targeted pair's target is never empty (its objects are visible where it is evaluated), so the
    convention only matters for no-target sentences, where it is GRES's: predicting nothing for a
    sentence that names nothing scores 1 (ReLA counts it a true positive with IoU 1).
    """
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    out = np.ones_like(union)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def precision_at(ious: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> dict[float, float]:
    """P@K: the share of IoUs >= K for each K (NaN when there are no pairs)."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        return {k: math.nan for k in thresholds}
    return {k: float(np.mean(ious >= k)) for k in thresholds}


def mean_iou(inter: np.ndarray, union: np.ndarray) -> float:
    """Average of per-pair IoUs (NaN without pairs)."""
    values = iou(inter, union)
    return float(values.mean()) if values.size else math.nan


def overall_iou(inter: np.ndarray, union: np.ndarray) -> float:
    """Σ intersections / Σ unions (NaN without pairs; 1.0 if every union is empty)."""
    inter = np.asarray(inter, dtype=np.int64)
    if inter.size == 0:
        return math.nan
    return float(iou(inter.sum(), np.asarray(union, dtype=np.int64).sum()))


# GRES's names for the same two computations (see the module's docstring): gIoU averages the per-sentence
# IoUs, a no-target sentence's being 1 or 0; cIoU pools every sentence's pixels. An empty total union (only
# no-target sentences, all predicted empty) is 1.0, where ReLA's evaluator would divide by zero.
generalised_iou = mean_iou
cumulative_iou = overall_iou


def no_target_accuracy(predicted: np.ndarray, targeted: np.ndarray) -> float:
    """N-acc: the share of no-target sentences whose prediction is empty (ReLA's TP / (TP + FN)).

    `predicted`: the predicted pixel count of each sample; `targeted`: whether it names an object.
    NaN without a no-target sample (ReLA reports 0 then, which reads like a measured failure).
    """
    predicted, targeted = np.asarray(predicted), np.asarray(targeted, dtype=bool)
    none = ~targeted
    return float(np.mean(predicted[none] == 0)) if none.any() else math.nan


def target_accuracy(predicted: np.ndarray, targeted: np.ndarray) -> float:
    """T-acc: the share of targeted sentences whose prediction is not empty (ReLA's TN / (TN + FP)).
    NaN without a targeted sample."""
    predicted, targeted = np.asarray(predicted), np.asarray(targeted, dtype=bool)
    return float(np.mean(predicted[targeted] > 0)) if targeted.any() else math.nan


@dataclass(frozen=True)
class TargetScores:
    """The figures only generalised sentences have, over the pairs of one view (or of a pooled set)."""

    targeted: int  # pairs that name at least one object
    no_target: int  # pairs that name none
    n_acc: float
    t_acc: float


@dataclass(frozen=True)
class ViewScores:
    """The figures of one view: P@K, mean and overall IoU over `pairs` pairs; `left_out` not counted.
    With generalised sentences, `targets` holds N-acc and T-acc, and P@K runs over the targeted pairs."""

    pairs: int
    left_out: int
    miou: float
    oiou: float
    precision: dict[float, float]
    targets: TargetScores | None = None  # None: every sentence names one object (the published data)

    @property
    def generalised(self) -> bool:
        return self.targets is not None

    @property
    def giou(self) -> float:
        return self.miou

    @property
    def ciou(self) -> float:
        return self.oiou

    def as_dict(self) -> dict[str, float | int]:
        """The JSON form: `p@0.5` … `p@0.9`, `miou`, `oiou`, `pairs`, `left_out`; with generalised
        sentences also `giou`, `ciou`, `n_acc`, `t_acc`, `targeted`, `no_target`."""
        out: dict[str, float | int] = {precision_key(k): v for k, v in self.precision.items()}
        out.update(miou=self.miou, oiou=self.oiou, pairs=self.pairs, left_out=self.left_out)
        if self.targets is not None:
            t = self.targets
            out.update(giou=self.miou, ciou=self.oiou, n_acc=t.n_acc, t_acc=t.t_acc, targeted=t.targeted,
                       no_target=t.no_target)
        return out


def score_view(inter: np.ndarray, union: np.ndarray, left_out: int = 0, *, predicted: np.ndarray | None = None,
               targeted: np.ndarray | None = None) -> ViewScores:
    """All figures of one view from the counts of its evaluated pairs.

    Without `targeted` every pair names one object, and the figures are the published ones. With it
    (bool per pair, as `inter`) and `predicted` (each prediction's pixel count), the generalised
    figures are added and P@K runs over the targeted pairs only, as ReLA's evaluator does.
    """
    inter = np.asarray(inter, dtype=np.int64)
    union = np.asarray(union, dtype=np.int64)
    ious = iou(inter, union)
    targets = None
    if targeted is not None:
        if predicted is None:
            raise ValueError("score_view: `targeted` needs `predicted`, the predicted pixel counts")
        targeted = np.asarray(targeted, dtype=bool)
        predicted = np.asarray(predicted, dtype=np.int64)
        if not targeted.shape == predicted.shape == inter.shape:
            raise ValueError(f"targeted {targeted.shape} and predicted {predicted.shape} must match the counts "
                             f"{inter.shape}")
        targets = TargetScores(targeted=int(targeted.sum()), no_target=int((~targeted).sum()),
                               n_acc=no_target_accuracy(predicted, targeted),
                               t_acc=target_accuracy(predicted, targeted))
        ious_for_precision = ious[targeted]
    else:
        ious_for_precision = ious
    return ViewScores(pairs=int(inter.size), left_out=int(left_out), miou=mean_iou(inter, union),
                      oiou=overall_iou(inter, union), precision=precision_at(ious_for_precision), targets=targets)


def view_distance(view: int, grid: int) -> int:
    """Manhattan distance in view steps from the centre view of an N×N rig (N odd)."""
    row, col = view_position(view, grid)
    c = grid // 2
    return abs(row - c) + abs(col - c)


def mvr(scores: Mapping[int, float], centre: float | Mapping[int, float], grid: int) -> float:
    """Multi-View Robustness from per-view scores (overall or mean IoU) of an N×N rig.

    `centre` is the centre view's score, or per view the centre's score over that view's pairs.
    The centre itself, if present in `scores`, is skipped. Q = 0 contributes 0 (the limit of Q ln Q).
    Returns NaN without a non-centre view or when a centre score is 0 (Q is undefined).
    """
    middle = centre_view(grid)
    total = 0.0
    terms = 0
    for view, score in scores.items():
        if view == middle:
            continue
        reference = centre[view] if isinstance(centre, Mapping) else centre
        if not reference > 0:
            return math.nan
        q = score / reference
        total += (q * math.log(q) if q > 0 else 0.0) / view_distance(view, grid)
        terms += 1
    return 0.0 - total if terms else math.nan  # 0.0 - 0.0 is +0.0, where -0.0 would print as "-0.00"


@dataclass(frozen=True)
class MultiViewReport:
    """Per-view figures, their mean and std over the chosen views, and MVR from oIoU and mIoU."""

    grid: int
    views: dict[int, ViewScores]  # every evaluated view (the chosen ones plus the centre for MVR)
    chosen: tuple[int, ...]  # the views the mean and std run over
    mean: dict[str, float]
    std: dict[str, float]
    mvr_oiou: float  # with generalised sentences: MVR from cIoU (the same sum)
    mvr_miou: float  # with generalised sentences: MVR from gIoU (the same mean)
    generalised: bool = False  # the views carry N-acc and T-acc (ViewScores.targets)


def mean_std(scores: Sequence[ViewScores], generalised: bool = False) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and population standard deviation (ddof 0) of every metric over views (Table 7.3)."""
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for key in metric_keys(generalised):
        values = np.array([s.as_dict()[key] for s in scores], dtype=np.float64)
        mean[key] = float(values.mean()) if values.size else math.nan
        std[key] = float(values.std()) if values.size else math.nan
    return mean, std


def score_views(inter: np.ndarray, union: np.ndarray, include: np.ndarray, views: Sequence[int], grid: int,
                chosen: Sequence[int] | None = None, *, predicted: np.ndarray | None = None,
                targeted: np.ndarray | None = None) -> MultiViewReport:
    """All figures from counts of R pairs × the evaluated `views` (columns in that order).

    `include[r, j]` says whether pair r counts in view `views[j]` (its referent is visible there).
    MVR needs the centre view among `views` once any other view is there; for view j its Q divides by
    the centre's score over the pairs included in both (the same pairs). `chosen` (default: all of
    `views`) are the views the mean and std run over. `targeted` (R,) bool, with `predicted` (R, views)
    pixel counts: generalised sentences (see `score_view`); MVR then comes from cIoU and gIoU.
    """
    inter = np.asarray(inter, dtype=np.int64)
    union = np.asarray(union, dtype=np.int64)
    include = np.asarray(include, dtype=bool)
    views = [int(v) for v in views]
    chosen = tuple(views if chosen is None else (int(v) for v in chosen))
    if not inter.shape == union.shape == include.shape == (inter.shape[0], len(views)):
        raise ValueError(f"counts {inter.shape}, {union.shape}, include {include.shape} do not fit "
                         f"{len(views)} views")
    generalised = targeted is not None
    if generalised:
        if predicted is None or np.shape(predicted) != inter.shape or np.shape(targeted) != inter.shape[:1]:
            raise ValueError(f"generalised scores need targeted ({inter.shape[0]},) and predicted {inter.shape}")
        per_target = np.broadcast_to(np.asarray(targeted, dtype=bool)[:, None], inter.shape)

    def one_view(j: int) -> ViewScores:
        rows = include[:, j]
        extra = ({"predicted": np.asarray(predicted)[rows, j], "targeted": per_target[rows, j]}
                 if generalised else {})
        return score_view(inter[rows, j], union[rows, j], int((~rows).sum()), **extra)

    per_view = {v: one_view(j) for j, v in enumerate(views)}
    mean, std = mean_std([per_view[v] for v in chosen], generalised)
    centre = grid * grid // 2
    others = [j for j, v in enumerate(views) if v != centre]
    if not others:
        return MultiViewReport(grid, per_view, chosen, mean, std, math.nan, math.nan, generalised)
    if centre not in views:
        raise ValueError(f"MVR needs the centre view {centre} among the evaluated views {views}")
    c = views.index(centre)
    return MultiViewReport(grid, per_view, chosen, mean, std,
                           mvr_oiou=_mvr_over_same_pairs(overall_iou, inter, union, include, views, c, grid),
                           mvr_miou=_mvr_over_same_pairs(mean_iou, inter, union, include, views, c, grid),
                           generalised=generalised)


def _mvr_over_same_pairs(score, inter: np.ndarray, union: np.ndarray, include: np.ndarray, views: list[int],
                         c: int, grid: int) -> float:
    """MVR of `score` (overall_iou or mean_iou), each view's Q over the pairs it shares with the centre."""
    scores: dict[int, float] = {}
    centres: dict[int, float] = {}
    for j, view in enumerate(views):
        if j == c:
            continue
        same = include[:, j] & include[:, c]
        scores[view] = score(inter[same, j], union[same, j])
        centres[view] = score(inter[same, c], union[same, c])
    return mvr(scores, centres, grid)


def finite(x: Any) -> Any:
    """A figure as JSON holds it: NaN (a figure with nothing to count) as null."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


def percent(x: float) -> str:
    """A figure as the tables print it: a percentage, n/a where there was nothing to count."""
    return "n/a" if not math.isfinite(x) else f"{100 * x:.2f}"


def group_json(pooled: ViewScores, report: MultiViewReport) -> dict[str, Any]:
    """One group of pairs in `evaluate --json` (an occlusion bin, a number of hops or of targets): its pooled
    figures (`pairs` there: the (pair, view) count), per-view figures, mean, std and MVR; NaN as null."""
    out = {
        "pooled": {k: finite(v) for k, v in pooled.as_dict().items() if k != "left_out"},
        "views": {str(v): {k: finite(x) for k, x in s.as_dict().items()} for v, s in report.views.items()},
        "mean": {k: finite(v) for k, v in report.mean.items()},
        "std": {k: finite(v) for k, v in report.std.items()},
        "mvr_oiou": finite(report.mvr_oiou),
        "mvr_miou": finite(report.mvr_miou),
    }
    if report.generalised:
        out.update(mvr_ciou=finite(report.mvr_oiou), mvr_giou=finite(report.mvr_miou))
    return out

