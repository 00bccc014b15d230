"""From counts to the report: stats.json's numbers and the Markdown table beside the published figures.

The report is plain JSON data, and the figures are drawn from it alone (`figures.py`), so
anyone can redraw them, or plot them their own way, from `stats.json` without the dataset.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from clevr_remv.stats.collect import SplitCounts
from clevr_remv.stats.published import OBJECTS_RANGE, published
from clevr_remv.truth.occlusion import summarise_histogram

WORD_RULE = ("whitespace-separated tokens, punctuation stripped (punctuation is attached to the word before it, "
             "so it never counts as a word; 'left of' is two words)")


def histogram(counter: Counter[int], low: int | None = None, high: int | None = None) -> dict[str, int]:
    """{value: count} over every integer from low (or the smallest value) to high, zeros included.

    Keys are strings because JSON object keys are; they are in increasing numeric order.
    """
    values = [*counter, *(v for v in (low, high) if v is not None)]
    if not values:
        return {}
    return {str(k): int(counter.get(k, 0)) for k in range(min(values), max(values) + 1)}


def mean_and_sem(counter: Counter[int]) -> tuple[float | None, float | None]:
    """Mean and its standard error (sample standard deviation / sqrt n); None when empty."""
    n = sum(counter.values())
    if n == 0:
        return None, None
    mean = sum(k * c for k, c in counter.items()) / n
    if n == 1:
        return mean, None
    variance = sum(c * (k - mean) ** 2 for k, c in counter.items()) / (n - 1)
    return mean, math.sqrt(variance / n)


def split_summary(c: SplitCounts, objects_range: tuple[int, int] = OBJECTS_RANGE) -> dict[str, Any]:
    """Every number stats reports about one split (stats.json's `splits.<split>`)."""
    objects_scene, objects_scene_sem = mean_and_sem(c.objects_per_scene)
    objects_pair, objects_pair_sem = mean_and_sem(c.objects_per_pair)
    words_mean, words_sem = mean_and_sem(c.words_per_sentence)
    dropped = c.dropped_referent_hidden + c.dropped_related_hidden
    visible = None
    if c.visible_per_view is not None and c.pairs:
        grid = int(c.grid or 0)
        visible = (c.visible_per_view / c.pairs).reshape(grid, grid).round(6).tolist()
    return {
        "shards": c.shards,
        "scenes": c.scenes,
        "pairs": c.pairs,
        "pairs_per_scene": c.pairs / c.scenes if c.scenes else None,
        "objects_per_scene_mean": objects_scene,
        "objects_per_scene_sem": objects_scene_sem,
        "objects_per_pair_mean": objects_pair,
        "objects_per_pair_sem": objects_pair_sem,
        "words_per_sentence_mean": words_mean,
        "words_per_sentence_sem": words_sem,
        "objects_per_scene_histogram": histogram(c.objects_per_scene, *objects_range),
        "objects_per_pair_histogram": histogram(c.objects_per_pair, *objects_range),
        "words_per_sentence_histogram": histogram(c.words_per_sentence),
        "families": dict(sorted(c.families.items())),
        "words_by_family": {f: c.family_words[f] / n for f, n in sorted(c.families.items())},
        "hops_histogram": histogram(c.hops, 0),
        "targets_histogram": histogram(c.targets, 0),
        "relations": dict(sorted(c.relations.items())),
        "compared_attributes": dict(sorted(c.compared_attributes.items())),
        "attribute_mentions": {kind: dict(sorted(values.items())) for kind, values in c.mentions.items()},
        "wordings": dict(sorted(c.wordings.items())),
        "rig_grid": c.grid,
        "visible_share": visible,
        "visible_fraction": None if c.fraction_all is None else {
            "centre_view": summarise_histogram(c.fraction_centre),
            "all_views": summarise_histogram(c.fraction_all),
            "shards_without": c.shards_without_fraction,
        },
        "dropped_referent_hidden": c.dropped_referent_hidden,
        "dropped_related_hidden": c.dropped_related_hidden,
        "dropped": dropped,
        "drop_rate": dropped / (c.pairs + dropped) if c.pairs + dropped else 0.0,
    }


def build_report(dataset: str, manifest: dict[str, Any], counts: dict[str, SplitCounts]) -> dict[str, Any]:
    """stats.json without its table: where the numbers come from, ours and the published ones."""
    layout = manifest.get("config", {}).get("layout", {})
    objects_range = (int(layout.get("min_objects", OBJECTS_RANGE[0])), int(layout.get("max_objects", OBJECTS_RANGE[1])))
    return {
        "dataset": dataset,
        "generator_version": manifest.get("generator_version"),
        "master_seed": manifest.get("master_seed"),
        "width": manifest.get("config", {}).get("width"),
        "height": manifest.get("config", {}).get("height"),
        "word_rule": WORD_RULE,
        "splits": {split: split_summary(c, objects_range) for split, c in counts.items()},
        "published": {split: published(split) for split in counts if published(split) is not None},
    }


def _integer(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _mean(mean: float | None, sem: float | None = None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f}" if sem is None else f"{mean:.2f} ± {sem:.2f}"


def _published(p: dict[str, Any] | None, key: str, integer: bool = False) -> str:
    if p is None:
        return "–"
    return _integer(p[key]) if integer else f"{p[key]:.2f}"


def split_table(split: str, s: dict[str, Any], p: dict[str, Any] | None) -> str:
    """One split's Markdown table: figure | ours | published."""
    grid = s["rig_grid"]
    rows = [
        ("scenes", _integer(s["scenes"]), _published(p, "scenes", True)),
        ("image-text pairs", _integer(s["pairs"]), _published(p, "pairs", True)),
        ("pairs per scene", _mean(s["pairs_per_scene"]), _published(p, "pairs_per_scene")),
        ("objects per scene", _mean(s["objects_per_scene_mean"], s["objects_per_scene_sem"]),
         _published(p, "objects_per_scene_mean")),
        ("objects per image-text pair", _mean(s["objects_per_pair_mean"], s["objects_per_pair_sem"]),
         _published(p, "objects_per_pair_mean")),
        ("words per sentence", _mean(s["words_per_sentence_mean"], s["words_per_sentence_sem"]),
         _published(p, "words_per_sentence_mean")),
        ("pairs dropped by occlusion", f"{s['dropped']:,} ({100 * s['drop_rate']:.2f} %)",
         "–" if p is None else f"< {100 * p['drop_rate_below']:.1f} %"),
        ("views per scene", "–" if grid is None else f"{grid * grid} ({grid} × {grid})",
         "–" if p is None else f"{p['views']} (9 × 9)"),
    ]
    rows += language_rows(s)
    fraction = s.get("visible_fraction")
    if fraction is not None:
        unoccluded = [fraction[w]["bin_shares"]["1.0"] for w in ("centre_view", "all_views")]
        rows.append(("referents unoccluded, centre / all views",
                     " / ".join("–" if u is None else f"{100 * u:.1f} %" for u in unoccluded), "–"))
    lines = [f"### {split}", "", "| figure | ours | published |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {ours} | {theirs} |" for name, ours, theirs in rows]
    return "\n".join(lines)


def language_rows(s: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows for a language beyond the published one (`--max-hops 2/3`, `--targets any`); none for it."""
    hops = {int(k): n for k, n in s.get("hops_histogram", {}).items()}
    targets = {int(k): n for k, n in s.get("targets_histogram", {}).items()}
    pairs = s["pairs"] or 1
    rows = []
    if any(n for k, n in hops.items() if k > 1):
        rows.append(("relations per sentence, 0 / 1 / 2 / 3",
                     " / ".join(f"{100 * hops.get(k, 0) / pairs:.1f} %" for k in range(4)), "≤ 1"))
    if any(n for k, n in targets.items() if k != 1):
        several = sum(n for k, n in targets.items() if k > 1)
        rows.append(("sentences naming one / several / no object",
                     " / ".join(f"{100 * n / pairs:.1f} %" for n in (targets.get(1, 0), several, targets.get(0, 0))),
                     "100 % one"))
    return rows


def markdown_tables(report: dict[str, Any]) -> str:
    """Every split's table, with a note on what ± and the word count mean."""
    tables = [split_table(split, s, report["published"].get(split)) for split, s in report["splits"].items()]
    note = f"Means ± their standard error. Words: {WORD_RULE}."
    return "\n\n".join(tables + [note]) + "\n"
