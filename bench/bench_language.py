"""Benchmark the expression engine under each language option (issue #24): what the sentences are and
what making them costs.

Why: `--max-hops 2/3` and `--targets any` add nine template families whose search is wider (a chain
searches anchors at every level; plurals and no-target descriptions enumerate attribute subsets), so
the figures a user needs before choosing them are the sentences' shape (family shares, relations per
sentence, objects named per sentence, words per sentence by family), what the checks refused, and the
generation time per scene next to the published language's, measured side by side in one run.

Layouts are drawn first (not timed) with every object fully visible, as `python -m
clevr_remv.stats.language` does; or, with `--dataset DIR`, the scenes of a rendered dataset with the pixel
counts its renders measured, so that the occlusion filter drops what it would drop there. Each option set
then generates the sentences of the same scenes, `--repeats` times (best time kept, time.perf_counter). A
rendered scene's own cost (Cycles: minutes for 81 views) dwarfs any of these.

    python bench/bench_language.py --layouts 1000
    python bench/bench_language.py --dataset lf600/      # real visibility: drops counted

Prints a table per option set, the time ratios, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clevr_remv.config import RenderConfig  # noqa: E402
from clevr_remv.expressions import generate_pairs, language_templates  # noqa: E402
from clevr_remv.scene.layout import draw_layout, scene_rng  # noqa: E402
from clevr_remv.scene.vocabulary import MAX_OBJECTS  # noqa: E402
from clevr_remv.stats.language import expression_stats  # noqa: E402

OPTIONS = ((1, "one", False), (2, "one", False), (3, "one", False), (1, "one", True), (1, "any", False),
           (2, "any", False), (3, "any", False), (3, "any", True))


def drawn(count: int, seed: int) -> tuple[list, int]:
    """`count` layouts of the train split with every object counted fully visible, and the threshold."""
    config = RenderConfig(seed=seed)
    visible = np.full((config.views, MAX_OBJECTS), 10 * config.min_visible_pixels, np.int32)
    return [(draw_layout(scene_rng(seed, "train", i), config, "train", i), visible) for i in range(count)], \
        config.min_visible_pixels


def stored(root: Path) -> tuple[list, int]:
    """Every scene of a rendered dataset with its measured visible pixel counts, and its threshold."""
    from clevr_remv.store import DatasetReader, require_manifest

    reader, scenes = DatasetReader(root), []
    for split in reader.splits:
        for shard, row in reader.iter_scenes(split):
            scenes.append((shard.scene(row), shard.visible_pixels(row)))
    return scenes, int(require_manifest(root)["min_visible_pixels"])


def measure(scenes: list, min_visible: int, hops: int, targets: str, ordinals: bool, repeats: int) -> dict:
    """The sentences of `scenes` under the options and the best time per scene over `repeats` runs."""
    templates = language_templates(None, hops, targets, ordinals)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        results = [generate_pairs(scene, visible, min_visible, templates) for scene, visible in scenes]
        best = min(best, time.perf_counter() - start)
    stats = expression_stats(zip([scene for scene, _ in scenes], results))
    return {"max_hops": hops, "targets": targets, "ordinals": ordinals, "ms_per_scene": 1000 * best / len(scenes),
            **stats}


def options(m: dict) -> str:
    return f"--max-hops {m['max_hops']} --targets {m['targets']}" + (" --ordinals" if m["ordinals"] else "")


def table(m: dict) -> str:
    pairs = max(m["pairs"], 1)
    lines = [f"{options(m)}: {m['pairs']:,} sentences, "
             f"{m['pairs_per_scene']:.2f} per scene, {m['words_per_sentence']:.2f} words, "
             f"{m['ms_per_scene']:.2f} ms per scene",
             "  family               share   words"]
    lines += [f"  {f:<20}{100 * n / pairs:5.1f} %  {m['words_by_family'][f]:6.2f}" for f, n in m["family_counts"].items()]
    lines.append("  relations per sentence: " + ", ".join(f"{h}: {100 * n / pairs:.1f} %"
                                                         for h, n in m["hop_counts"].items()))
    lines.append("  objects named: " + ", ".join(f"{t}: {100 * n / pairs:.1f} %" for t, n in m["target_counts"].items()))
    lines.append("  rejected: " + (", ".join(f"{why} {n}" for why, n in m["rejected"].items()) or "none")
                 + f"; dropped by occlusion {m['dropped']} ({100 * m['drop_rate']:.2f} %)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", type=Path, default=None, help="a rendered dataset's scenes instead of layouts")
    args = parser.parse_args()
    scenes, min_visible = stored(args.dataset) if args.dataset else drawn(args.layouts, args.seed)
    print(f"{len(scenes):,} scenes from {args.dataset or 'drawn layouts (every object visible)'}, "
          f"visibility threshold {min_visible} px\n")
    measured = [measure(scenes, min_visible, *choice, args.repeats) for choice in OPTIONS]
    for m in measured:
        print(table(m), end="\n\n")
    base = measured[0]["ms_per_scene"]
    print("time per scene against the published language: " + ", ".join(
        f"({options(m)}) {m['ms_per_scene'] / base:.2f}x" for m in measured))
    print(json.dumps({"scenes": len(scenes), "dataset": str(args.dataset or ""), "repeats": args.repeats,
                      "seed": args.seed, "measured": measured}))


if __name__ == "__main__":
    main()
