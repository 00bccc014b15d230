"""`clevr-remv evaluate --by occlusion`: every figure of `evaluate` per bin of the referent's visible fraction.

A (pair, view) falls in the bin of its referent's visible fraction in that view (`refs/visible_fraction`,
clevr_remv/truth/occlusion.py: 1.0, [0.75, 1), [0.5, 0.75), [0.25, 0.5), (0, 0.25)); the pairs left out of a
view (`refs/visible` false) stay out. Per bin:
- the per-view figures, their mean and std over the chosen views, as `evaluate` gives them for all pairs;
- the pooled figures: P@K, mean and overall IoU over every (pair, view) of the bin in the chosen views,
  with their count (the row of the table and the point of the plot);
- MVR: each view's score over its pairs in the bin, divided by the centre's score over the same pairs
  (whatever their visible fraction in the centre view).

With generalised sentences (`--targets any`) the fraction is that of the union of the targets, the figures
are the generalised ones (metrics.py), and a no-target sentence, which has nothing to occlude (its fraction
is NaN), falls in no bin: `evaluate --by targets` scores those.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.evaluation.metrics import (
    MultiViewReport,
    ViewScores,
    _mvr_over_same_pairs,
    group_json,
    mean_iou,
    overall_iou,
    percent,
    score_view,
    score_views,
    table_columns,
)
from clevr_remv.truth.occlusion import BIN_NAMES, BINS, bin_index


@dataclass(frozen=True)
class OcclusionBin:
    name: str
    pooled: ViewScores  # over every (pair, view) of the bin in the chosen views
    report: MultiViewReport  # per view, mean and std over the chosen views, MVR as the module says


def score_by_occlusion(inter: np.ndarray, union: np.ndarray, include: np.ndarray, fraction: np.ndarray,
                       views: Sequence[int], grid: int, chosen: Sequence[int], *, predicted: np.ndarray | None = None,
                       targeted: np.ndarray | None = None) -> list[OcclusionBin]:
    """One OcclusionBin per bin of BINS, from (R, len(views)) counts, `include` and visible `fraction`;
    `predicted` and `targeted` as `metrics.score_views` takes them, for generalised sentences."""
    views = [int(v) for v in views]
    bins = bin_index(fraction)
    centre = grid * grid // 2
    in_chosen = np.isin(views, list(chosen))
    general = {"predicted": predicted, "targeted": targeted} if targeted is not None else {}
    out = []
    for b, name in enumerate(BIN_NAMES):
        mine = include & (bins == b)
        report = score_views(inter, union, mine, views, grid, chosen=chosen, **general)
        if centre in views and len(views) > 1:
            same = mine.copy()
            same[:, views.index(centre)] = include[:, views.index(centre)]
            c = views.index(centre)
            report = MultiViewReport(report.grid, report.views, report.chosen, report.mean, report.std,
                                     _mvr_over_same_pairs(overall_iou, inter, union, same, views, c, grid),
                                     _mvr_over_same_pairs(mean_iou, inter, union, same, views, c, grid),
                                     report.generalised)
        pooled_mask = mine & in_chosen[None, :]
        pooled_extra = ({"predicted": np.asarray(predicted)[pooled_mask],
                         "targeted": np.broadcast_to(np.asarray(targeted, bool)[:, None], mine.shape)[pooled_mask]}
                        if general else {})
        pooled = score_view(inter[pooled_mask], union[pooled_mask], **pooled_extra)
        out.append(OcclusionBin(name, pooled, report))
    return out


def bins_json(bins: list[OcclusionBin]) -> dict[str, Any]:
    """The `by_occlusion` part of `evaluate --json`: per bin its range, pooled figures (with `pairs`, the
    (pair, view) count), per-view figures, mean, std and MVR; NaN as null."""
    return {b.name: {"range": [spec[1], spec[2]], "includes": [spec[3], spec[4]], **group_json(b.pooled, b.report)}
            for spec, b in zip(BINS, bins)}


def format_bins(bins: list[OcclusionBin], chosen: Sequence[int]) -> str:
    """The table printed after `evaluate`'s: one row per bin, figures pooled over the chosen views."""
    generalised = bool(bins) and bins[0].report.generalised
    columns = table_columns(generalised)
    mvr = ["MVR cIoU", "MVR gIoU"] if generalised else ["MVR oIoU", "MVR mIoU"]
    headers = ["visible fraction", "pairs x views", *(header for _, header in columns), *mvr]
    rows = [[b.name, str(b.pooled.pairs), *(percent(float(b.pooled.as_dict()[k])) for k, _ in columns),
             percent(b.report.mvr_oiou), percent(b.report.mvr_miou)] for b in bins]
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(headers)]
    lines = [f"by the referent's visible fraction, pooled over the {len(chosen)} chosen view(s); figures in %"]
    lines.append("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(x, widths)) for x in rows]
    return "\n".join(lines)


def plot_bins(bins: list[OcclusionBin], title: str, path: Path | str, fmt: str) -> None:
    """Overall IoU (pooled over the chosen views) against the visible fraction, one point per bin with
    its (pair, view) count; written atomically after `fmt` (png, svg or pdf)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clevr_remv.store import atomic_path

    centres = [1.0 if low == high else (low + high) / 2 for _, low, high, _, _ in BINS]
    values = [b.pooled.oiou for b in bins]
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.plot(centres, values, "o-", color="tab:blue")
    for x, y, b in zip(centres, values, bins):
        if math.isfinite(y):
            ax.annotate(f"{y:.3f}\nn={b.pooled.pairs}", (x, y), textcoords="offset points", xytext=(0, 8),
                        ha="center", fontsize=8)
    for _, low, high, _, _ in BINS[1:]:
        ax.axvspan(low, high, color="0.93" if BINS.index(next(s for s in BINS if s[1] == low)) % 2 else "0.97")
    ax.set_xlim(0, 1.05)
    measured = [v for v in values if math.isfinite(v)]
    ax.set_ylim(max(0.0, min(measured, default=0.0) - 0.1), 1.05)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("visible fraction of the referent (bin centre; 1.0 = unoccluded)")
    ax.set_ylabel("overall IoU")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    plt.close(fig)
