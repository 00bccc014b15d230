"""Instantiating a template family for a chosen referent: which anchor, relation and attributes.

The search works on object sets, not on text: a description is a subset of the referent's
attributes, and it is kept only when filtering the input set by it leaves exactly that object.
It is exhaustive over structures (relation value x anchor) in random order, so `None` means the
family truly cannot name this object, and random among the descriptions of a structure, so the
same scene gives varied sentences. The evaluator re-checks every result afterwards anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np

from clevr_remv.expressions import programs
from clevr_remv.expressions.programs import Program, node
from clevr_remv.expressions.templates import RELATIONS, SLOT_KINDS, Family
from clevr_remv.scene.description import Scene
from clevr_remv.scene.vocabulary import ATTRIBUTES

RELATION_THRESHOLD = 0.2  # CLEVR's: layout.relation_holds' default


@dataclass(frozen=True)
class SlotFill:
    """What a sentence says about one object: the attributes stated, in CLEVR's order."""

    suffix: str  # the placeholder number of this slot ("" or "2", ...)
    object: int
    said: tuple[tuple[str, str], ...]  # (attribute, value)

    def value(self, attribute: str) -> str | None:
        return dict(self.said).get(attribute)


@dataclass(frozen=True)
class Instance:
    """A family filled in for one scene: everything needed for the program and the sentence."""

    family: Family
    choices: tuple[tuple[str, str], ...]  # (placeholder, value), e.g. ("<R>", "left")
    slots: tuple[SlotFill, ...]  # in program order: the anchor (if any) first, the referent last

    @property
    def referent(self) -> int:
        return self.slots[-1].object

    @property
    def mentioned(self) -> tuple[int, ...]:
        return tuple(s.object for s in self.slots)

    def program(self) -> Program:
        """The CLEVR-format program this instance realises (filters only for attributes said)."""
        nodes: Program = [node("scene")]
        slots = iter(self.slots)
        choices = dict(self.choices)
        for step in self.family.steps[1:]:
            last = [len(nodes) - 1]
            if step.function == "filter":
                for attribute, value in next(slots).said:
                    nodes.append(node(f"filter_{attribute}", [len(nodes) - 1], [value]))
            elif step.function == "unique":
                nodes.append(node("unique", last))
            elif step.function == "relate":
                nodes.append(node("relate", last, [choices[step.params[0]]]))
            else:  # same
                nodes.append(node(f"same_{choices[step.params[0]]}", last))
        return nodes


def find_instance(
    family: Family,
    scene: Scene,
    referent: int,
    rng: np.random.Generator,
    said_weights: Sequence[float],
    anchors: frozenset[int],
) -> Instance | None:
    """A random instance of `family` naming `referent`, or None when none exists.

    `anchors` are the objects allowed as the related object (the visible ones).
    """
    everything = frozenset(o.id for o in scene.objects)
    step = family.relation_step
    if step is None:
        allowed = _allowed(family, family.slots[-1], None)
        said = choose_description(scene, referent, everything, allowed, said_weights, rng)
        return None if said is None else Instance(family, (), (SlotFill(family.slots[-1], referent, said),))
    placeholder = step.params[0]
    domain = RELATIONS if step.function == "relate" else ATTRIBUTES
    options = [(v, a) for v in domain for a in sorted(anchors - {referent})]
    for i in rng.permutation(len(options)):
        value, anchor = options[i]
        instance = _try_structure(family, scene, referent, anchor, placeholder, value, everything, said_weights, rng)
        if instance is not None:
            return instance
    return None


def _try_structure(
    family: Family,
    scene: Scene,
    referent: int,
    anchor: int,
    placeholder: str,
    value: str,
    everything: frozenset[int],
    said_weights: Sequence[float],
    rng: np.random.Generator,
) -> Instance | None:
    """Descriptions for anchor and referent under one (relation value, anchor), if both exist."""
    relate = family.relation_step.function == "relate"  # type: ignore[union-attr]
    if relate and relation_ambiguous(scene, anchor, value):
        return None
    members = programs.relate_set(scene, anchor, value) if relate else programs.same_set(scene, anchor, value)
    if referent not in members:
        return None
    anchor_slot, referent_slot = family.slots
    compared = value if placeholder in family.null_same else None  # NULL_SAME: never say it
    said_r = choose_description(scene, referent, members, _allowed(family, referent_slot, compared), said_weights, rng)
    if said_r is None:
        return None
    said_a = choose_description(scene, anchor, everything, _allowed(family, anchor_slot, compared), said_weights, rng)
    if said_a is None:
        return None
    slots = (SlotFill(anchor_slot, anchor, said_a), SlotFill(referent_slot, referent, said_r))
    return Instance(family, ((placeholder, value),), slots)


def relation_ambiguous(scene: Scene, anchor: int, relation: str) -> bool:
    """True when some object sits in the dead band of the relation's axis around the anchor.

    Such an object is neither left nor right of the anchor by CLEVR's rule, but a person
    might say it is; the layout's margin (0.4) prevents this, hand-made scenes may not.
    """
    b = np.asarray(scene.object(anchor).position[:2])
    axis = np.asarray(scene.directions[relation][:2])
    return any(
        abs(float((np.asarray(a.position[:2]) - b) @ axis)) <= RELATION_THRESHOLD
        for a in scene.objects
        if a.id != anchor
    )


def _allowed(family: Family, suffix: str, compared: str | None) -> tuple[str, ...]:
    """Attributes this slot may state: not NULL-constrained, not the `compared` one."""
    return tuple(a for kind, a in SLOT_KINDS.items() if f"<{kind}{suffix}>" not in family.null and a != compared)


def choose_description(
    scene: Scene,
    target: int,
    pool: frozenset[int],
    allowed: Sequence[str],
    said_weights: Sequence[float],
    rng: np.random.Generator,
) -> tuple[tuple[str, str], ...] | None:
    """Attributes of `target` that leave exactly it in `pool`; None if no such subset.

    The number of attributes is drawn by `said_weights` among the counts that work, then a
    subset of that size uniformly: this is the knob that sets the mean sentence length.
    """
    valid = unique_descriptions(scene, target, pool, allowed)
    counts = sorted({len(s) for s in valid if said_weights[len(s)] > 0})
    if not counts:
        return None
    weights = np.array([said_weights[c] for c in counts], dtype=float)
    count = counts[rng.choice(len(counts), p=weights / weights.sum())]
    sized = [s for s in valid if len(s) == count]
    subset = sized[rng.integers(len(sized))]
    target_object = scene.object(target)
    return tuple((a, getattr(target_object, a)) for a in subset)


def unique_descriptions(
    scene: Scene, target: int, pool: frozenset[int], allowed: Sequence[str]
) -> list[tuple[str, ...]]:
    """Every subset of `allowed` (in CLEVR's attribute order) that singles `target` out of `pool`."""
    if target not in pool:
        return []
    ordered = [a for a in ATTRIBUTES if a in allowed]
    me = scene.object(target)
    others = [scene.object(i) for i in pool if i != target]
    return [
        subset
        for size in range(len(ordered) + 1)
        for subset in combinations(ordered, size)
        if not any(all(getattr(o, a) == getattr(me, a) for a in subset) for o in others)
    ]
