"""The statistics figures, drawn with matplotlib from the report alone (stats.json's numbers).

Figures 6.5-6.7 of the thesis are `objects_and_words_<split>`: (a) how many objects the
scene of each image-text pair holds, (b) how many words each sentence has, means marked.
The rest are what a reader of the dataset asks next: family, relation and compared-attribute
shares, how often each attribute value is said, objects per scene, and the views in which
referents are visible. Each is saved as PNG and SVG, atomically, at a fixed size
(FIGURE_INCHES x DPI pixels). `matplotlib.figure.Figure` is used without pyplot, so no GUI
backend is ever touched (the Agg and SVG canvases do the drawing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clevr_remv.scene.vocabulary import (
    ATTRIBUTES,
    COLORS,
    MATERIALS,
    SHAPES,
    SIZES,
)
from clevr_remv.store.atomic import atomic_path

DPI = 100
FORMATS = ("png", "svg")

# Width, height in inches of each figure kind; a PNG is (w * DPI) x (h * DPI) pixels.
FIGURE_INCHES: dict[str, tuple[float, float]] = {
    "objects_and_words": (12.0, 4.5),
    "objects_per_scene": (8.0, 4.5),
    "families": (8.0, 4.5),
    "relations": (11.0, 4.5),
    "compared_attributes": (8.0, 4.5),
    "attribute_mentions": (12.0, 8.0),
    "visibility": (6.5, 5.5),
    "visible_fraction": (12.0, 4.5),
    "language": (15.0, 4.5),
}

SPLIT_COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}

RELATION_ORDER = ("none", "relate:left", "relate:right", "relate:front", "relate:behind",
                  *(f"same_{a}" for a in ATTRIBUTES))
VALUES = {"size": tuple(SIZES), "color": tuple(COLORS), "material": MATERIALS, "shape": SHAPES}


def relation_label(relation: str) -> str:
    """'relate:left' -> 'left of', 'same_color' -> 'same color', 'none' -> 'none (zero-hop)'."""
    if relation == "none":
        return "none (zero-hop)"
    if relation.startswith("relate:"):
        r = relation.removeprefix("relate:")
        return {"left": "left of", "right": "right of", "front": "in front of"}.get(r, r)
    return relation.replace("_", " ")


def _figure(kind: str, **subplots: Any):
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGURE_INCHES[kind], dpi=DPI, layout="constrained")
    return fig, fig.subplots(**subplots)


def save(fig: Any, figdir: Path, name: str) -> list[Path]:
    """Write `name.png` and `name.svg` into figdir atomically; the paths written."""
    paths = []
    for fmt in FORMATS:
        path = Path(figdir) / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI)
        paths.append(path)
        fig.set_layout_engine("none")  # keep the first save's layout: it is half the drawing time
    return paths


def _dodge(positions: Sequence[int] | range, series: int, of: int) -> list[float]:
    """Bar centres of series `series` of `of` side by side around each position (0.8 wide in all)."""
    return [p + (series - (of - 1) / 2) * 0.8 / of for p in positions]


def _colour(split: str, index: int) -> str:
    return SPLIT_COLOURS.get(split, f"C{index + 3}")


def _histogram_panel(ax: Any, histogram: dict[str, int], mean: float | None, colour: str,
                     xlabel: str, ylabel: str, title: str) -> None:
    """Bars of a histogram, counts on top when they fit, the mean as a vertical line named in a legend
    placed where no bar or count is (a label beside the line overlapped the counts)."""
    from matplotlib.ticker import MaxNLocator

    xs = [int(k) for k in histogram]
    ys = list(histogram.values())
    bars = ax.bar(xs, ys, width=0.8, color=colour)
    if len(xs) <= 14:
        ax.bar_label(bars, labels=[f"{y:,}" for y in ys], fontsize=8, padding=2)
    if mean is not None:
        ax.axvline(mean, color="black", linestyle="--", linewidth=1.2, label=f"mean {mean:.2f}")
    ax.set_xticks(xs)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.12)
    if mean is not None:
        ax.legend(loc="best", fontsize=9, handlelength=1.5, framealpha=0.9)


def objects_and_words(split: str, s: dict[str, Any], colour: str) -> Any:
    """Thesis Figures 6.5-6.7 for one split: objects per image-text pair (a), words per sentence (b)."""
    fig, (a, b) = _figure("objects_and_words", ncols=2)
    pairs = s["pairs"]
    _histogram_panel(a, s["objects_per_pair_histogram"], s["objects_per_pair_mean"], colour,
                     "objects in the scene (count)", "image-text pairs",
                     f"(a) {split}: objects per image-text pair (n = {pairs:,} pairs)")
    _histogram_panel(b, s["words_per_sentence_histogram"], s["words_per_sentence_mean"], colour,
                     "sentence length (words)", "sentences",
                     f"(b) {split}: words per sentence (n = {pairs:,} sentences)")
    return fig


def objects_per_scene(splits: dict[str, dict[str, Any]]) -> Any:
    """Share of scenes with each object count, one bar per split; the uniform share as a line."""
    fig, ax = _figure("objects_per_scene")
    names = list(splits)
    values = sorted({int(k) for s in splits.values() for k in s["objects_per_scene_histogram"]})
    width = 0.8 / max(len(names), 1)
    for i, split in enumerate(names):
        s = splits[split]
        hist = s["objects_per_scene_histogram"]
        shares = [100 * hist.get(str(v), 0) / s["scenes"] for v in values]
        ax.bar(_dodge(values, i, len(names)), shares, width=width, color=_colour(split, i),
               label=f"{split} (n = {s['scenes']:,} scenes, mean {s['objects_per_scene_mean']:.2f})")
    if values:
        ax.axhline(100 / len(values), color="black", linestyle=":", linewidth=1,
                   label=f"uniform {values[0]}–{values[-1]} ({100 / len(values):.1f} %)")
    ax.set_xticks(values)
    ax.set_xlabel("objects in the scene (count)")
    ax.set_ylabel("share of scenes (%)")
    ax.set_title(f"Objects per scene ({sum(s['scenes'] for s in splits.values()):,} scenes)")
    ax.legend(fontsize=8)
    ax.margins(y=0.15)
    return fig


def _grouped_shares(kind: str, splits: dict[str, dict[str, Any]], key: str, order: Sequence[str],
                    labels: Sequence[str], xlabel: str, title: str, total_key: str = "pairs") -> Any:
    """Grouped bars: each category's share of a split's pairs, the count written on each bar.

    Every category of `order` gets a place, zero or not, so figures of two datasets line up;
    categories the data holds beyond `order` (a new template family) follow.
    """
    fig, ax = _figure(kind)
    seen = {c for s in splits.values() for c in s[key]}
    categories = list(order) + sorted(seen - set(order))
    names = dict(zip(order, labels))
    width = 0.8 / max(len(splits), 1)
    for i, (split, s) in enumerate(splits.items()):
        counts = [s[key].get(c, 0) for c in categories]
        total = sum(counts) if total_key == "sum" else s[total_key]
        shares = [100 * n / total if total else 0.0 for n in counts]
        bars = ax.bar(_dodge(range(len(categories)), i, len(splits)), shares, width=width,
                      color=_colour(split, i), label=f"{split} (n = {total:,} pairs)")
        ax.bar_label(bars, labels=[f"{n:,}" for n in counts], fontsize=7, padding=1, rotation=90)
    ax.set_xticks(range(len(categories)), [names.get(c, c) for c in categories])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.margins(y=0.2)
    return fig


def families(splits: dict[str, dict[str, Any]]) -> Any:
    order = sorted({f for s in splits.values() for f in s["families"]})
    return _grouped_shares("families", splits, "families", order, [f.replace("_", " ") for f in order],
                           "template family", f"Pairs per template family ({_pairs(splits):,} pairs)")


def relations(splits: dict[str, dict[str, Any]]) -> Any:
    return _grouped_shares("relations", splits, "relations", RELATION_ORDER,
                           [relation_label(r) for r in RELATION_ORDER], "relation to another object",
                           f"Pairs per relation ({_pairs(splits):,} pairs)")


def compared_attributes(splits: dict[str, dict[str, Any]]) -> Any:
    total = sum(sum(s["compared_attributes"].values()) for s in splits.values())
    return _grouped_shares("compared_attributes", splits, "compared_attributes", ATTRIBUTES, ATTRIBUTES,
                           "compared attribute (same ... as)",
                           f"Same-attribute pairs per compared attribute ({total:,} pairs)", total_key="sum")


def attribute_mentions(splits: dict[str, dict[str, Any]]) -> Any:
    """For each attribute kind, how often each value is said, as a share of the split's sentences."""
    fig, axes = _figure("attribute_mentions", nrows=2, ncols=2)
    width = 0.8 / max(len(splits), 1)
    for ax, kind in zip(axes.flat, ATTRIBUTES):
        values = VALUES[kind]
        for i, (split, s) in enumerate(splits.items()):
            said = s["attribute_mentions"].get(kind, {})
            shares = [100 * said.get(v, 0) / s["pairs"] if s["pairs"] else 0.0 for v in values]
            ax.bar(_dodge(range(len(values)), i, len(splits)), shares, width=width,
                   color=_colour(split, i), label=f"{split} ({sum(said.values()):,} said in {s['pairs']:,} sentences)")
        ax.set_xticks(range(len(values)), values)
        ax.set_ylabel("said in % of sentences")
        ax.set_title(f"{kind} words (synonyms counted as their value)")
        ax.legend(fontsize=7)
        ax.margins(y=0.15)
    fig.suptitle("How often each attribute value is said")
    return fig


def visibility(split: str, s: dict[str, Any]) -> Any:
    """N x N heat map: the share of referents visible in each view, the centre view outlined."""
    import numpy as np
    from matplotlib.patches import Rectangle

    fig, ax = _figure("visibility")
    share = 100 * np.asarray(s["visible_share"], dtype=float)
    grid = share.shape[0]
    low = float(share.min())
    vmin = min(max(0.0, 5 * np.floor(low / 5)), 95.0)
    image = ax.imshow(share, cmap="viridis", vmin=vmin, vmax=100.0)
    if grid <= 11:
        for (row, col), value in np.ndenumerate(share):
            ax.text(col, row, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if value < (vmin + 100) / 2 else "black")
    c = grid // 2
    ax.add_patch(Rectangle((c - 0.5, c - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    ax.set_xticks(range(grid))
    ax.set_yticks(range(grid))
    ax.set_xlabel("view column (0 = left)")
    ax.set_ylabel("view row (0 = top)")
    ax.set_title(f"{split}: referents visible per view (%)\n(n = {s['pairs']:,} pairs, {grid} × {grid} rig, "
                 "centre outlined)")
    fig.colorbar(image, ax=ax, label="referents visible (%)")
    return fig


def visible_fraction(splits: dict[str, dict[str, Any]]) -> Any:
    """Per split: the share of (pair, view)s at each visible fraction of the referent, the centre view
    against all views (0.05-wide bins over (0, 1), 1.0 = unoccluded on its own bar)."""
    import numpy as np

    fig, axes = _figure("visible_fraction", ncols=len(splits), squeeze=False, sharey=True)
    for ax, (name, s) in zip(axes[0], splits.items()):
        summary = s["visible_fraction"]
        edges = np.asarray(summary["all_views"]["histogram_edges"])
        width = edges[1] - edges[0]
        for k, (where, label, colour) in enumerate((("centre_view", "centre view", "#d62728"),
                                                    ("all_views", "all views", "#1f77b4"))):
            h = summary[where]
            total = max(h["pairs_views"] - h["outside_image"], 1)
            shares = 100 * np.asarray(h["histogram"] + [h["unoccluded"]], float) / total
            x = np.append(edges[:-1] + width / 2, 1.0 + width)
            ax.bar(x + (k - 0.5) * width * 0.45, shares, width=width * 0.45, color=colour, label=label)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0, 1.0 + width], ["0", "0.25", "0.5", "0.75", "", "1.0"])
        ax.set_yscale("log")
        ax.set_xlabel("visible fraction (right bar: exactly 1)")
        ax.set_title(f"{name}: {summary['all_views']['pairs_views']:,} (pair, view)s")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("share of (pair, view)s (%, log scale)")
    fig.suptitle("How occluded the referents are")
    return fig


def language(splits: dict[str, dict[str, Any]]) -> Any:
    """The sentences' shape per split: relations chained, objects named, and mean words by template family
    (issue #24's figures: `--max-hops` and `--targets any` move the first two off 1)."""
    fig, axes = _figure("language", ncols=3)
    width = 0.8 / max(len(splits), 1)
    for ax, key, xlabel in ((axes[0], "hops_histogram", "relations chained per sentence"),
                            (axes[1], "targets_histogram", "objects named per sentence (0: none)")):
        keys = sorted({int(k) for s in splits.values() for k in s[key]} | {0, 1})
        for i, (split, s) in enumerate(splits.items()):
            counts = [s[key].get(str(k), 0) for k in keys]
            shares = [100 * n / s["pairs"] for n in counts]
            bars = ax.bar(_dodge(range(len(keys)), i, len(splits)), shares, width=width, color=_colour(split, i),
                          label=f"{split} (n = {s['pairs']:,})")
            ax.bar_label(bars, labels=[f"{n:,}" for n in counts], fontsize=7, padding=1, rotation=90)
        ax.set_xticks(range(len(keys)), [str(k) for k in keys])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of sentences (%)")
        ax.legend(fontsize=8)
        ax.margins(y=0.2)
    order = sorted({f for s in splits.values() for f in s["words_by_family"]})
    for i, (split, s) in enumerate(splits.items()):
        means = [s["words_by_family"].get(f, 0.0) for f in order]
        axes[2].barh(_dodge(range(len(order)), i, len(splits)), means, height=width, color=_colour(split, i),
                     label=split)
    axes[2].set_yticks(range(len(order)), [f.replace("_", " ") for f in order], fontsize=8)
    axes[2].set_xlabel("mean words per sentence")
    axes[2].legend(fontsize=8)
    fig.suptitle(f"The language: hops, targets and length by family ({_pairs(splits):,} sentences)")
    return fig


def _pairs(splits: dict[str, dict[str, Any]]) -> int:
    return sum(s["pairs"] for s in splits.values())


def write_figures(report: dict[str, Any], figdir: Path) -> list[Path]:
    """Every figure of the report into figdir, PNG and SVG; splits without pairs are left out."""
    splits = {name: s for name, s in report["splits"].items() if s["pairs"]}
    if not splits:
        return []
    Path(figdir).mkdir(parents=True, exist_ok=True)
    drawn = {f"objects_and_words_{name}": objects_and_words(name, s, _colour(name, i))
             for i, (name, s) in enumerate(splits.items())}
    drawn |= {f"visibility_{name}": visibility(name, s) for name, s in splits.items()}
    drawn |= {"objects_per_scene": objects_per_scene(splits), "families": families(splits),
              "relations": relations(splits), "compared_attributes": compared_attributes(splits),
              "attribute_mentions": attribute_mentions(splits), "language": language(splits)}
    with_fraction = {name: s for name, s in splits.items() if s.get("visible_fraction")}
    if with_fraction:  # datasets of schema version 3 or later
        drawn["visible_fraction"] = visible_fraction(with_fraction)
    return [path for name, fig in drawn.items() for path in save(fig, figdir, name)]
