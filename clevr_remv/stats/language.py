"""Figures of the language half of the dataset, to set beside the published ones.

`expression_stats` summarises (scene, pairs) results; `python -m clevr_remv.stats.language
--layouts 300` measures them on freshly drawn layouts without rendering (every object counted
as fully visible), which is how template or weight changes are checked against the published
figures (7-8 pairs per scene, about 8.0 words per sentence; docs/expressions.md).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from clevr_remv.config import RenderConfig
from clevr_remv.contract import ScriptParser, run_script
from clevr_remv.expressions import resolve_templates
from clevr_remv.expressions.pairs import ExpressionResult, generate_pairs
from clevr_remv.expressions.programs import RELATION_FUNCTIONS, from_json, hops_of
from clevr_remv.expressions.templates import select_families
from clevr_remv.scene.description import Scene
from clevr_remv.scene.layout import draw_layout, scene_rng
from clevr_remv.scene.vocabulary import MAX_OBJECTS
from clevr_remv.store.records import Ref

PUBLISHED = {"pairs_per_scene": "7-8", "words_per_sentence": "8.0", "drop_rate": "< 0.1 %"}


def words(sentence: str) -> int:
    """Words as a reader counts them: whitespace-separated tokens ("left of" is two)."""
    return len(sentence.split())


def expression_stats(scenes_and_refs: Iterable[tuple[Scene, Sequence[Ref] | ExpressionResult]]) -> dict[str, Any]:
    """Pairs per scene, words per sentence, family and relation shares, occlusion drops.

    Each item is (scene, refs) or (scene, ExpressionResult); only the latter knows how many
    pairs the occlusion filter removed, so plain ref lists count as zero dropped.
    """
    per_scene: list[int] = []
    lengths: list[int] = []
    families: Counter[str] = Counter()
    family_words: Counter[str] = Counter()
    relations: Counter[str] = Counter()
    hops: Counter[int] = Counter()
    targets: Counter[int] = Counter()
    rejected: Counter[str] = Counter()
    dropped_referent = dropped_related = 0
    for _scene, result in scenes_and_refs:
        refs = result.refs if isinstance(result, ExpressionResult) else list(result)
        if isinstance(result, ExpressionResult):
            dropped_referent += result.dropped_referent
            dropped_related += result.dropped_related
            rejected.update(result.rejected)
        per_scene.append(len(refs))
        lengths.extend(words(r.expression) for r in refs)
        families.update(r.family for r in refs)
        for r in refs:
            family_words[r.family] += words(r.expression)
        relations.update(_relation(r.program) for r in refs)
        hops.update(hops_of(r.program) for r in refs)
        targets.update(len(r.target_ids) for r in refs)
    pairs = sum(per_scene)
    dropped = dropped_referent + dropped_related
    return {
        "scenes": len(per_scene),
        "pairs": pairs,
        "pairs_per_scene": pairs / max(len(per_scene), 1),
        "min_pairs": min(per_scene, default=0),
        "max_pairs": max(per_scene, default=0),
        "words_per_sentence": float(np.mean(lengths)) if lengths else 0.0,
        "family_counts": dict(sorted(families.items())),
        "family_share": {f: n / max(pairs, 1) for f, n in sorted(families.items())},
        "relation_counts": dict(sorted(relations.items())),
        "words_by_family": {f: family_words[f] / n for f, n in sorted(families.items())},
        "hop_counts": dict(sorted(hops.items())),
        "target_counts": dict(sorted(targets.items())),
        "rejected": dict(sorted(rejected.items())),
        "dropped_referent": dropped_referent,
        "dropped_related": dropped_related,
        "dropped": dropped,
        "drop_rate": dropped / max(pairs + dropped, 1),
    }


def _relation(program: str) -> str:
    """The program's relation (relate:left, same_color, ...) or 'none' for zero-hop."""
    for n in from_json(program):
        if n["function"] == "relate":
            return f"relate:{n['value_inputs'][0]}"
        if n["function"] in RELATION_FUNCTIONS:
            return n["function"]
    return "none"


def layout_stats(layouts: int, split: str = "train", seed: int = 0, templates: Any = None,
                 max_hops: int = 1, targets: str = "one", ordinals: bool = False) -> dict[str, Any]:
    """Stats on `layouts` drawn layouts of a split, every object fully visible (no rendering), in the
    language `max_hops` and `targets` allow (the published one by default)."""
    config = RenderConfig(seed=seed)
    loaded = select_families(resolve_templates(templates), max_hops, targets, ordinals)
    visible = np.full((config.views, MAX_OBJECTS), 10 * config.min_visible_pixels, dtype=np.int32)
    items = []
    for index in range(layouts):
        scene = draw_layout(scene_rng(seed, split, index), config, split, index)
        items.append((scene, generate_pairs(scene, visible, config.min_visible_pixels, loaded)))
    return expression_stats(items)


def format_stats(stats: dict[str, Any]) -> str:
    """A short human-readable report, published figures beside ours."""
    lines = [
        f"scenes                {stats['scenes']}",
        f"pairs                 {stats['pairs']}",
        f"pairs per scene       {stats['pairs_per_scene']:.2f}  (min {stats['min_pairs']}, max {stats['max_pairs']}; "
        f"published {PUBLISHED['pairs_per_scene']})",
        f"words per sentence    {stats['words_per_sentence']:.2f}  (published {PUBLISHED['words_per_sentence']})",
        f"dropped by occlusion  {stats['dropped']} = {100 * stats['drop_rate']:.3f} %  (referent hidden "
        f"{stats['dropped_referent']}, related object hidden {stats['dropped_related']}; published "
        f"{PUBLISHED['drop_rate']})",
        "families:",
        *(f"  {f:<20}{n:>7}  {100 * stats['family_share'][f]:5.1f} %" for f, n in stats["family_counts"].items()),
        "relations:",
        *(f"  {r:<20}{n:>7}" for r, n in stats["relation_counts"].items()),
    ]
    if set(stats["hop_counts"]) - {0, 1} or set(stats["target_counts"]) - {1}:  # beyond the published language
        pairs = max(stats["pairs"], 1)
        lines += [
            "relations per sentence:",
            *(f"  {h:<20}{n:>7}  {100 * n / pairs:5.1f} %" for h, n in stats["hop_counts"].items()),
            "objects named per sentence:",
            *(f"  {t:<20}{n:>7}  {100 * n / pairs:5.1f} %" for t, n in stats["target_counts"].items()),
            "words per sentence by family:",
            *(f"  {f:<20}{w:>7.2f}" for f, w in stats["words_by_family"].items()),
            "candidates the checks rejected:",
            *(f"  {why:<38}{n:>7}" for why, n in stats["rejected"].items()),
        ]
    return "\n".join(lines)


PROG = "python -m clevr_remv.stats.language"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = ScriptParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", type=_positive, default=300, help="layouts to draw (default 300)")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--templates", default=None, help="template folder (default: the repository's)")
    parser.add_argument("--max-hops", type=int, choices=(1, 2, 3), default=1,
                        help="relations chained per sentence (default 1, the published language)")
    parser.add_argument("--targets", choices=("one", "any"), default="one",
                        help="one object per sentence (default), or any: several or none too")
    parser.add_argument("--ordinals", action="store_true", help="also \"the second cube from the left\"")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    stats = layout_stats(args.layouts, args.split, args.seed, args.templates, args.max_hops, args.targets, args.ordinals)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))


if __name__ == "__main__":
    run_script(main, prog=PROG)
