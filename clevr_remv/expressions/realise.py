"""Turning an instance into a sentence: phrasing, synonyms, spacing, capital and full stop.

Only wording is random here; what is said is fixed by the instance (and so by its program),
which is why a sentence can never state an attribute its objects do not have.
"""

from __future__ import annotations

import re

import numpy as np

from clevr_remv.expressions.search import Instance
from clevr_remv.expressions.templates import (
    CHOICE_KINDS,
    PLACEHOLDER,
    PLURAL_KIND,
    SLOT_KINDS,
    Lexicon,
)


class RealiseError(RuntimeError):
    """A placeholder survived into a sentence: a bug, since templates are validated on load."""


def realise(instance: Instance, lexicon: Lexicon, rng: np.random.Generator) -> str:
    """One of the family's phrasings, filled in and tidied into a sentence."""
    texts = instance.family.texts
    text = texts[rng.integers(len(texts))]
    return finish(fill(text, instance, lexicon, rng))


def fill(text: str, instance: Instance, lexicon: Lexicon, rng: np.random.Generator) -> str:
    """Replace every placeholder by a phrasing of its value ('' for an attribute not said)."""
    slots = {s.suffix: s for s in instance.slots}
    choices = dict(instance.choices)

    def word(match: re.Match[str]) -> str:
        kind, suffix = match.group(1), match.group(2)
        if kind in CHOICE_KINDS:
            return _pick(lexicon.words[CHOICE_KINDS[kind]][choices[match.group(0)]], rng)
        attribute = SLOT_KINDS[kind]
        value = slots[suffix].value(attribute)
        if kind == PLURAL_KIND:  # templates.load_templates made sure the lexicon has plurals
            return _pick(lexicon.plural[value] if value is not None else lexicon.unnamed_plural, rng)  # type: ignore[index]
        if value is not None:
            return _pick(lexicon.words[attribute][value], rng)
        return _pick(lexicon.unnamed_shape, rng) if attribute == "shape" else ""

    filled = PLACEHOLDER.sub(word, text)
    if "<" in filled or ">" in filled:
        raise RealiseError(f"placeholder left in {filled!r} (template {text!r})")
    return filled


def finish(text: str) -> str:
    """Single spaces, no space before punctuation, "an" before a vowel, a capital first letter, a final
    full stop."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([.,;:!?])", r"\1", text)
    text = re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _pick(phrasings: tuple[str, ...], rng: np.random.Generator) -> str:
    return phrasings[rng.integers(len(phrasings))]
