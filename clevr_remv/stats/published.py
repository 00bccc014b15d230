"""The published CLEVR-Remv figures that `clevr-remv stats` sets beside ours (data only).

Sources: the published dataset's reference figures and the thesis (Figures 6.5-6.7, its dataset table) as
quoted in issue 8. The thesis gives 6.53 / 6.53 / 6.50 objects as the mean of its Figures
6.5-6.7, which count objects over image-text pairs; with 7-8 pairs in every scene the mean over
pairs and the mean over scenes differ by a few hundredths, so both rows of our table show it.
Pairs per scene are the published pair counts divided by the published scene counts.
"""

from __future__ import annotations

from typing import Any

# Per split: published scenes, pairs, mean objects (per scene and per image-text pair) and
# mean words per sentence.
PUBLISHED_SPLITS: dict[str, dict[str, float]] = {
    "train": {"scenes": 7_000, "pairs": 55_966, "objects_mean": 6.53, "words_per_sentence_mean": 8.02},
    "val": {"scenes": 1_500, "pairs": 11_992, "objects_mean": 6.53, "words_per_sentence_mean": 8.02},
    "test": {"scenes": 1_500, "pairs": 11_989, "objects_mean": 6.50, "words_per_sentence_mean": 8.04},
}

# Pairs dropped because the referent is invisible: "< 0.1 %" of all pairs.
DROP_RATE_BELOW = 0.001

# The published rig and image size (81 views of 480 x 320).
RIG_GRID = 9
WIDTH, HEIGHT = 480, 320

# Objects per scene are drawn uniformly from this range (CLEVR's rule).
OBJECTS_RANGE = (3, 10)


def published(split: str) -> dict[str, Any] | None:
    """The published figures of `split` in stats.json's key names, or None for a split it lacks."""
    p = PUBLISHED_SPLITS.get(split)
    if p is None:
        return None
    return {
        "scenes": int(p["scenes"]),
        "pairs": int(p["pairs"]),
        "pairs_per_scene": p["pairs"] / p["scenes"],
        "objects_per_scene_mean": p["objects_mean"],
        "objects_per_pair_mean": p["objects_mean"],
        "words_per_sentence_mean": p["words_per_sentence_mean"],
        "drop_rate_below": DROP_RATE_BELOW,
        "views": RIG_GRID * RIG_GRID,
    }
