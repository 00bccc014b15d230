"""An evaluation reported: the JSON file, the table printed by `clevr-remv evaluate`, the plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.contract import counted
from clevr_remv.evaluation.metrics import (
    METRIC_KEYS,
    THRESHOLDS,
    view_distance,
)
from clevr_remv.evaluation.scoring import Evaluation
from clevr_remv.outputs import PICTURE_SUFFIXES, check_suffix
from clevr_remv.scene.rig import centre_view, view_position
from clevr_remv.store import atomic_path, write_json_atomic


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def report_json(evaluation: Evaluation) -> dict[str, Any]:
    """The `--json` document; IoUs and P@K as fractions 0..1, MVR as a fraction (0.022 = 2.2 %), NaN as null."""
    r = evaluation.report
    extra = {}
    if evaluation.by_occlusion is not None:
        from clevr_remv.evaluation.by_occlusion import bins_json

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


def _percent(x: float) -> str:
    """ "12.34 %", or "n/a" without its sign."""
    return "n/a" if not math.isfinite(x) else f"{_pct(x)} %"


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
    lines = [f"{evaluation.source} on {evaluation.split} ({counted(evaluation.pairs, 'pair')}, {r.grid}x{r.grid} rig); "
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
        lines.append(f"MVR (overall IoU): {_percent(r.mvr_oiou)}   MVR (mean IoU): {_percent(r.mvr_miou)}")
    if evaluation.by_occlusion is not None:
        from clevr_remv.evaluation.by_occlusion import format_bins

        lines += ["", format_bins(evaluation.by_occlusion, r.chosen)]
    return "\n".join(lines)


def plot_report(evaluation: Evaluation, path: Path | str) -> None:
    """Overall IoU over the N×N view grid as a heat map (views not evaluated blank), written atomically
    as PNG, SVG or PDF after the suffix of `path`; with `--by occlusion`, overall IoU against the
    referent's visible fraction instead."""
    path = Path(path)
    fmt = check_suffix(path, PICTURE_SUFFIXES, "plot_report")
    if evaluation.by_occlusion is not None:  # --by occlusion: overall IoU against the visible fraction
        from clevr_remv.data.selection import views_caption
        from clevr_remv.evaluation.by_occlusion import plot_bins

        r = evaluation.report
        plot_bins(evaluation.by_occlusion, f"Overall IoU by visible fraction: {evaluation.source}\n"
                  f"{evaluation.split}, {views_caption(r.chosen, r.grid)}", path, fmt)
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
    mvr = _percent(r.mvr_oiou)
    ax.set_title(f"Overall IoU per view: {evaluation.source}\n{evaluation.split}, MVR (oIoU) {mvr}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    plt.close(fig)
