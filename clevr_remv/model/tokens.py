"""Sentences as word ids. The vocabulary is the train split's words, sorted, behind two reserved
ids (padding 0, unknown 1): it is stored in the run's config.json, so a prediction reads a sentence
exactly as training did, and a word the train split never used becomes `<unk>`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

PAD, UNKNOWN = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def words(sentence: str) -> list[str]:
    """Lower-case words, punctuation dropped: the templates' punctuation carries no meaning."""
    return _WORD.findall(sentence.lower())


def build_vocabulary(sentences: Iterable[str]) -> list[str]:
    """Every word of `sentences`, sorted (the same sentences give the same ids), after PAD and UNKNOWN."""
    found = {w for sentence in sentences for w in words(sentence)}
    return [PAD, UNKNOWN, *sorted(found)]


class Tokenizer:
    """A sentence -> its word ids, cut or padded (0) to `length` words; `blind` gives every sentence
    as padding only (the text-blind control: the network then sees the same input for any sentence)."""

    def __init__(self, vocabulary: Sequence[str], length: int, blind: bool = False) -> None:
        self.ids = {w: i for i, w in enumerate(vocabulary)}
        self.length, self.blind = int(length), bool(blind)

    def __call__(self, sentence: str) -> np.ndarray:
        out = np.zeros(self.length, np.int64)
        if self.blind:
            return out
        unknown = self.ids[UNKNOWN]
        found = [self.ids.get(w, unknown) for w in words(sentence)][:self.length]
        out[:len(found)] = found
        return out
