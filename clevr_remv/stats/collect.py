"""Counting a rendered dataset from its small datasets only: what `clevr-remv stats` reports.

A shard's pixels (`images`, `masks`, `depth`) are over 99 % of its bytes, and no statistic
needs them, so only `scenes` (JSON), `refs/*` and the file attributes are ever read: 10,000
scenes are counted in seconds instead of decompressing their ~98 GB.

Words are counted as in `clevr_remv.stats.language.words`: whitespace-separated tokens with
punctuation stripped. The engine attaches punctuation to the word before it
(`expressions.realise.finish`), so punctuation never makes a token of its own, "left of" is
two words and "The red cube." is three.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from clevr_remv.expressions.programs import hops_of
from clevr_remv.expressions.templates import Lexicon
from clevr_remv.scene.vocabulary import ATTRIBUTES
from clevr_remv.stats.language import _relation, words
from clevr_remv.store.columns import SCENES
from clevr_remv.store.manifest import require_manifest
from clevr_remv.store.reader import ShardReader, require_split
from clevr_remv.store.refs import REQUIRED, RefTable
from clevr_remv.truth.occlusion import HISTOGRAM_LENGTH, fraction_histogram

# What stats reads from a shard: the scene descriptions and the refs table (store/refs.py); everything
# else (the pixel arrays above all) stays on disk.
SMALL_DATASETS: tuple[str, ...] = (SCENES, *REQUIRED)

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def tokens(sentence: str) -> list[str]:
    """Lower-case words with punctuation stripped ("The cube's left." -> the, cube's, left)."""
    return _TOKEN.findall(sentence.lower())


@dataclass
class SplitCounts:
    """Everything stats reports about one split, as plain counters (summed shard by shard)."""

    split: str
    shards: int = 0
    scenes: int = 0
    pairs: int = 0
    grid: int | None = None
    objects_per_scene: Counter[int] = field(default_factory=Counter)
    objects_per_pair: Counter[int] = field(default_factory=Counter)
    words_per_sentence: Counter[int] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    family_words: Counter[str] = field(default_factory=Counter)  # words of the family's sentences, summed
    hops: Counter[int] = field(default_factory=Counter)  # relations chained per sentence (--max-hops)
    targets: Counter[int] = field(default_factory=Counter)  # objects named per sentence (--targets any)
    relations: Counter[str] = field(default_factory=Counter)
    compared_attributes: Counter[str] = field(default_factory=Counter)
    mentions: dict[str, Counter[str]] = field(default_factory=lambda: {a: Counter() for a in ATTRIBUTES})
    wordings: Counter[str] = field(default_factory=Counter)
    visible_per_view: np.ndarray | None = None  # (V,) int: pairs whose referent is visible in each view
    # Fine histograms (clevr_remv.truth.occlusion.fraction_histogram) of the referents' visible fraction over
    # (pair, centre view) and (pair, view); None while no shard of the split has refs/visible_fraction.
    fraction_centre: np.ndarray | None = None
    fraction_all: np.ndarray | None = None
    shards_without_fraction: int = 0
    dropped_referent_hidden: int = 0
    dropped_related_hidden: int = 0


class MentionCounter:
    """Finds the size, colour, material and shape words of a sentence, synonyms included.

    Built from the lexicon (templates/lexicon.json) so that "big" counts as large and "ball"
    as sphere; the unnamed-shape words ("thing", "object") are counted as wordings only.
    One regular expression of every phrasing, longest first, scans a sentence in one pass,
    so a two-word phrasing wins over a one-word phrasing inside it.
    """

    def __init__(self, lexicon: Lexicon) -> None:
        self._phrases: dict[str, tuple[str, str] | None] = {}
        for kind in ATTRIBUTES:
            for value, phrasings in lexicon.words[kind].items():
                for phrase in phrasings:
                    self._phrases.setdefault(" ".join(tokens(phrase)), (kind, value))
        for phrase in lexicon.unnamed_shape:
            self._phrases.setdefault(" ".join(tokens(phrase)), None)
        alternatives = sorted((p for p in self._phrases if p), key=len, reverse=True)
        words_ = "|".join(r"\s+".join(map(re.escape, p.split())) for p in alternatives)
        self._pattern = re.compile(rf"(?<![^\W_])(?:{words_})(?![^\W_])")

    def find(self, sentence: str) -> list[tuple[str, tuple[str, str] | None]]:
        """(phrase, (kind, value) or None for an unnamed shape) for each vocabulary phrase said."""
        found = (" ".join(m.group(0).split()) for m in self._pattern.finditer(sentence.lower()))
        return [(phrase, self._phrases[phrase]) for phrase in found]


@lru_cache(maxsize=65_536)
def relation_and_attribute(program: str) -> tuple[str, str | None]:
    """The program's relation ("relate:left", "same_color", "none") and compared attribute, if any.

    Cached: programs repeat (the same filters and relation in many scenes), so each distinct
    string is parsed once.
    """
    relation = _relation(program)
    return relation, relation.removeprefix("same_") if relation.startswith("same_") else None


def read_small(shard: ShardReader) -> tuple[np.ndarray, RefTable]:
    """The scene descriptions (JSON) and the refs of an open shard: what stats reads besides attributes.
    An incomplete shard is one line naming what it lacks, before anything is read."""
    missing = shard.missing(SMALL_DATASETS)
    if missing:
        raise ValueError(f"{shard.path}: not a complete shard (no {', '.join(missing)})")
    return shard.scene_texts(), shard.ref_table()


def add_shard(counts: SplitCounts, shard: ShardReader, mentions: MentionCounter) -> None:
    """Add one open shard to `counts`, reading only SMALL_DATASETS and attributes."""
    texts, refs = read_small(shard)
    stored = shard.attrs
    attrs = {key: stored.get(key, 0) for key in ("rig_grid", "dropped_referent_hidden", "dropped_related_hidden")}
    n_objects = [len(json.loads(s)["objects"]) for s in texts]
    rows, visible = refs.scene, refs.visible
    grid = int(attrs["rig_grid"] or round(np.sqrt(visible.shape[1])))
    if counts.grid is None:
        counts.grid, counts.visible_per_view = grid, np.zeros(grid * grid, dtype=np.int64)
    if visible.shape[1] != grid * grid or grid != counts.grid:
        raise ValueError(f"{shard.path}: {visible.shape[1]} views in refs/visible, but the split's rig is "
                         f"{counts.grid}x{counts.grid}")
    counts.shards += 1
    counts.scenes += len(n_objects)
    counts.pairs += len(rows)
    counts.objects_per_scene.update(n_objects)
    counts.objects_per_pair.update(n_objects[row] for row in rows)
    counts.visible_per_view += visible.sum(axis=0)
    counts.families.update(refs.family)
    counts.targets.update(int(n) for n in refs.target_count)
    for sentence, family in zip(refs.expression, refs.family):
        counts.words_per_sentence[words(sentence)] += 1
        counts.family_words[family] += words(sentence)
        for phrase, said in mentions.find(sentence):
            counts.wordings[phrase] += 1
            if said is not None:
                counts.mentions[said[0]][said[1]] += 1
    for program in refs.program:
        counts.hops[hops_of(program)] += 1
        relation, attribute = relation_and_attribute(program)
        counts.relations[relation] += 1
        if attribute is not None:
            counts.compared_attributes[attribute] += 1
    add_fractions(counts, refs, grid)
    counts.dropped_referent_hidden += int(attrs["dropped_referent_hidden"])
    counts.dropped_related_hidden += int(attrs["dropped_related_hidden"])


def add_fractions(counts: SplitCounts, refs: RefTable, grid: int) -> None:
    """Add a shard's visible fractions (schema 3; older shards are counted as without it)."""
    if not refs.measured_fraction:
        counts.shards_without_fraction += 1
        return
    fraction = refs.visible_fraction[refs.target_count > 0]  # a sentence naming nothing has no fraction
    if counts.fraction_all is None:
        counts.fraction_centre = np.zeros(HISTOGRAM_LENGTH, np.int64)
        counts.fraction_all = np.zeros(HISTOGRAM_LENGTH, np.int64)
    counts.fraction_centre += fraction_histogram(fraction[:, grid * grid // 2])
    counts.fraction_all += fraction_histogram(fraction)


def dataset_shards(root: Path, splits: Iterable[str] | None = None) -> tuple[dict[str, Any], dict[str, list[Path]]]:
    """The manifest of `root` and the shard files of each chosen split (all splits by default).

    Raises NotADataset when `root` holds no dataset.json, ValueError for an unknown split.
    """
    root = Path(root)
    manifest = require_manifest(root)
    chosen = list(splits) if splits else list(manifest.get("splits", {}))
    for split in chosen:
        require_split(manifest, root, split)
    return manifest, {s: [root / name for name in manifest["splits"][s].get("shards", [])] for s in chosen}


def collect(shards: dict[str, list[Path]], lexicon: Lexicon,
            on_shard: Callable[[Path], None] | None = None) -> dict[str, SplitCounts]:
    """Count every shard of every split; `on_shard` is called after each (a progress bar).

    A shard that is missing or unreadable raises `contract.DamagedShard` naming it.
    """
    mentions = MentionCounter(lexicon)
    result = {}
    for split, paths in shards.items():
        counts = SplitCounts(split)
        for path in paths:
            with ShardReader(path) as shard, shard.reading():
                add_shard(counts, shard, mentions)
            if on_shard is not None:
                on_shard(path)
        result[split] = counts
    return result
