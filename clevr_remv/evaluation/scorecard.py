"""An evaluation reported: the JSON file, the table printed by `clevr-remv evaluate`, the plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.contract import counted
from clevr_remv.evaluation.metrics import (
    table_columns,
    view_distance,
)
from clevr_remv.evaluation.scoring import Evaluation
from clevr_remv.outputs import PICTURE_SUFFIXES, check_suffix
from clevr_remv.scene.rig import centre_view, view_position
from clevr_remv.store import atomic_path, write_json_atomic


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def report_json(evaluation: Evaluation) -> dict[str, Any]:
    """The `--json` document; IoUs and P@K as fractions 0..1, MVR as a fraction (0.022 = 2.2 %), NaN as null.

    With generalised sentences the views, mean and std carry `giou`, `ciou`, `n_acc`, `t_acc` (and the
    views `targeted`, `no_target`), and the document `mvr_ciou`, `mvr_giou` and `target_pairs`; without,
    it is the published document, key for key. `--by hops` / `--by targets` add `by_hops` / `by_targets`.
    """
    r = evaluation.report
    extra: dict[str, Any] = {}
    if evaluation.by_occlusion is not None:
        from clevr_remv.evaluation.by_occlusion import bins_json

        extra["by_occlusion"] = bins_json(evaluation.by_occlusion)
    if evaluation.by_sentence:
        from clevr_remv.evaluation.by_sentence import groups_json

        extra |= {f"by_{kind}": groups_json(groups) for kind, groups in evaluation.by_sentence.items()}
    if r.generalised:
        extra |= {"mvr_ciou": _finite(r.mvr_oiou), "mvr_giou": _finite(r.mvr_miou),
                  "target_pairs": evaluation.target_pairs}
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
    """The printed table: one row per view (figures in %), mean and std over the chosen views, MVR.

    With generalised sentences the columns are P@K (targeted pairs), gIoU, cIoU, N-acc and T-acc, and the
    first line says how many pairs name no object and several; without, the published table, line for line.
    """
    r = evaluation.report
    columns = table_columns(r.generalised)
    headers = ["view", "row,col", "dist", "pairs", "left out", *(header for _, header in columns)]
    rows: list[list[str]] = []
    for v, s in sorted(r.views.items()):
        row, col = view_position(v, r.grid)
        figures = s.as_dict()
        mark = "" if v in r.chosen else "*"
        rows.append([f"{v}{mark}", f"{row},{col}", str(view_distance(v, r.grid)), str(s.pairs), str(s.left_out),
                     *(_pct(float(figures[k])) for k, _ in columns)])
    for name, figures in (("mean", r.mean), ("std", r.std)):
        rows.append([name, "", "", "", "", *(_pct(figures[k]) for k, _ in columns)])
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(headers)]
    pairs = counted(evaluation.pairs, "pair")
    if r.generalised and evaluation.target_pairs is not None:
        kinds = evaluation.target_pairs
        pairs += f": {kinds['none']:,} with no target, {kinds['several']:,} with several"
    lines = [f"{evaluation.source} on {evaluation.split} ({pairs}, {r.grid}x{r.grid} rig); figures in %"]
    lines.append("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    for i, x in enumerate(rows):
        if i == len(r.views):
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(c.rjust(w) for c, w in zip(x, widths)))
    lines.append(f"mean and std over the {len(r.chosen)} chosen view(s)"
                 + ("; * centre view, evaluated as MVR's reference only" if len(r.chosen) < len(r.views) else ""))
    if r.generalised:
        lines.append("P@K over the targeted pairs; gIoU, cIoU, N-acc (no-target pairs predicted empty) and "
                     "T-acc (targeted pairs predicted non-empty) as in GRES (ReLA)")
    if set(r.views) == {centre_view(r.grid)}:
        lines.append("MVR: n/a (only the centre view evaluated)")
    elif r.generalised:
        lines.append(f"MVR (cIoU): {_percent(r.mvr_oiou)}   MVR (gIoU): {_percent(r.mvr_miou)}")
    else:
        lines.append(f"MVR (overall IoU): {_percent(r.mvr_oiou)}   MVR (mean IoU): {_percent(r.mvr_miou)}")
    if evaluation.by_occlusion is not None:
        from clevr_remv.evaluation.by_occlusion import format_bins

        lines += ["", format_bins(evaluation.by_occlusion, r.chosen)]
    if evaluation.by_sentence:
        from clevr_remv.evaluation.by_sentence import format_groups

        for kind, groups in evaluation.by_sentence.items():
            lines += ["", format_groups(kind, groups, r.chosen)]
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
    name = "cIoU" if r.generalised else "overall IoU"  # the same sum: Σ intersections / Σ unions
    fig.colorbar(image, ax=ax, label=name)
    mvr = _percent(r.mvr_oiou)
    title = "cIoU" if r.generalised else "Overall IoU"
    ax.set_title(f"{title} per view: {evaluation.source}\n{evaluation.split}, "
                 f"MVR ({'cIoU' if r.generalised else 'oIoU'}) {mvr}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    plt.close(fig)
