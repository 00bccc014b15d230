"""Instantiating a template family for a chosen referent: which anchor, relation and attributes.

The search works on object sets, not on text: a description is a subset of the referent's
attributes, and it is kept only when filtering the input set by it leaves exactly that object.
It is exhaustive over structures (relation value x anchor) in random order, up to STRUCTURE_BUDGET
tries (never reached by a one-hop family), so `None` means the family cannot name this object,
and random among the descriptions of a structure, so the
same scene gives varied sentences. The evaluator re-checks every result afterwards anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np

from clevr_remv.expressions import programs
from clevr_remv.expressions.programs import Program, node
from clevr_remv.expressions.templates import ORDINALS, RELATIONS, SLOT_KINDS, VOCABULARY, Family
from clevr_remv.scene.description import Scene
from clevr_remv.scene.vocabulary import ATTRIBUTES

RELATION_THRESHOLD = 0.2  # CLEVR's: layout.relation_holds' default
VOCABULARY_OF = {a: VOCABULARY[a] for a in ATTRIBUTES}


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
    slots: tuple[SlotFill, ...]  # in program order: the first anchor (if any) first, the referent last
    targets: frozenset[int] | None = None  # what the program names; None: the last slot's object alone
    counted: frozenset[int] = frozenset()  # an ordinal's set: the objects its rank counts

    @property
    def referent(self) -> int:
        """The object the sentence was built around: its referent, one of its targets, or (no target) the
        object whose description was changed until it fits nothing."""
        return self.slots[-1].object if not self.family.joined else self.slots[0].object

    @property
    def target_set(self) -> frozenset[int]:
        return frozenset({self.referent}) if self.targets is None else self.targets

    @property
    def mentioned(self) -> tuple[int, ...]:
        return tuple(s.object for s in self.slots)

    @property
    def anchors(self) -> tuple[int, ...]:
        """The objects the sentence relies on besides its targets: a chain's related objects, and the others
        an ordinal counts (a hidden one would make "the second ... from the left" another object)."""
        if self.family.ordinal:
            return tuple(sorted(self.counted - {self.referent}))
        return () if self.family.joined else self.mentioned[:-1]

    def program(self) -> Program:
        """The CLEVR-format program this instance realises (filters only for attributes said)."""
        nodes: Program = [node("scene")]
        slots = iter(self.slots)
        choices = dict(self.choices)
        branch_ends: list[int] = []
        for step in self.family.steps[1:]:
            last = [len(nodes) - 1]
            if step.function == "filter":
                for attribute, value in next(slots).said:
                    nodes.append(node(f"filter_{attribute}", [len(nodes) - 1], [value]))
            elif step.function == "unique":
                nodes.append(node("unique", last))
            elif step.function == "relate":
                nodes.append(node("relate", last, [choices[step.params[0]]]))
            elif step.function == "same":
                nodes.append(node(f"same_{choices[step.params[0]]}", last))
            elif step.function == "ordinal":
                rank, side = ordinal_placeholders(step.params)
                nodes.append(node("ordinal", last, [choices[side], choices[rank]]))
            elif step.function == "scene":  # a second description begins ("and", "or")
                branch_ends.append(len(nodes) - 1)
                nodes.append(node("scene"))
            else:  # union
                nodes.append(node("union", [branch_ends[-1], len(nodes) - 1]))
        return nodes


# Structures (relation value x anchor, at every level of a chain) tried before a family gives up on an
# object: a one-hop family has at most 4 x 9 = 36, so the published families always search exhaustively;
# a three-hop chain could otherwise try 36^3 before saying it cannot name the object.
STRUCTURE_BUDGET = 400


def find_instance(
    family: Family,
    scene: Scene,
    referent: int,
    rng: np.random.Generator,
    said_weights: Sequence[float],
    anchors: frozenset[int],
) -> Instance | None:
    """A random instance of `family` built around `referent`, or None when none exists.

    `anchors` are the objects allowed as related objects or second targets (the visible ones).
    """
    if family.joined:
        return _find_joined(family, scene, referent, rng, said_weights, anchors)
    if family.ordinal:
        return _find_ordinal(family, scene, referent, rng, said_weights, anchors)
    search = _ChainSearch(family, scene, rng, said_weights, anchors)
    found = search.name(referent, family.hops, frozenset({referent}), final=True)
    if found is None:
        return None
    slots, choices, targets = found
    return Instance(family, tuple(choices), tuple(slots), None if family.targets == "one" else targets)


class _ChainSearch:
    """Naming an object through a chain of relations, the referent's description last.

    Searched backwards from the referent: a relation value and an anchor it holds against (not in the
    dead band), the referent's description within that relation's set, then the anchor named the same way
    with one hop fewer. Every anchor is named uniquely (a chain never refers through an ambiguous object)
    and every object of a chain is a different one.
    """

    def __init__(self, family: Family, scene: Scene, rng: np.random.Generator,
                 said_weights: Sequence[float], anchors: frozenset[int]) -> None:
        self.family, self.scene, self.rng, self.weights, self.anchors = family, scene, rng, said_weights, anchors
        self.everything = frozenset(o.id for o in scene.objects)
        self.tries = 0

    def name(self, target: int, level: int, used: frozenset[int], final: bool = False,
             unsaid: frozenset[str] = frozenset()):
        """(slots, choices, targets) naming `target` with `level` hops, or None. `unsaid`: attributes its
        description must not state (a NULL_SAME comparison with the object it anchors)."""
        if level == 0:
            return self._describe(target, self.everything, 0, final, unsaid, ())
        step = self.family.relation_steps[level - 1]
        placeholder = step.params[0]
        relate = step.function == "relate"
        domain = RELATIONS if relate else ATTRIBUTES
        options = [(v, a) for v in domain for a in sorted(self.anchors - used)]
        for i in self.rng.permutation(len(options)):
            if self.tries >= STRUCTURE_BUDGET:
                return None
            self.tries += 1
            value, anchor = options[i]
            if relate and relation_ambiguous(self.scene, anchor, value):
                continue
            members = (programs.relate_set(self.scene, anchor, value) if relate
                       else programs.same_set(self.scene, anchor, value))
            if target not in members:
                continue
            # NULL_SAME: the compared attribute is said of neither object, or it would give the answer away.
            compared = frozenset({value}) if placeholder in self.family.null_same else frozenset()
            here = self._describe(target, members, level, final, unsaid | compared, ((placeholder, value),))
            if here is None:
                continue
            below = self.name(anchor, level - 1, used | {anchor}, unsaid=compared)
            if below is None:
                continue
            return below[0] + here[0], below[1] + here[1], here[2]
        return None

    def _describe(self, target: int, pool: frozenset[int], level: int, final: bool,
                  unsaid: frozenset[str], choice: tuple):
        """The slot of `target` within `pool`: unique for anchors and single referents, else by the family."""
        suffix = self.family.slots[level]
        allowed = tuple(a for a in _allowed(self.family, suffix, None) if a not in unsaid)
        kind = self.family.targets if final else "one"
        if kind == "one":
            said = choose_description(self.scene, target, pool, allowed, self.weights, self.rng)
            found = None if said is None else (said, frozenset({target}))
        elif kind == "several":
            found = choose_set(self.scene, target, pool, allowed, self.weights, self.rng,
                               accept=lambda members: len(members) >= 2, min_said=int(pool == self.everything))
        else:
            found = choose_absent(self.scene, target, pool, allowed, self.weights, self.rng)
        if found is None:
            return None
        said, targets = found
        return [SlotFill(suffix, target, said)], list(choice), targets


def _find_ordinal(family: Family, scene: Scene, referent: int, rng: np.random.Generator,
                  said_weights: Sequence[float], anchors: frozenset[int]) -> Instance | None:
    """"The second cube from the left": a description whose set (two or more) ranks `referent` first to third
    from a side, with no other member in the dead band beside it. Sides in random order. The others it counts
    must be among `anchors` (not known hidden): a viewer counts what it sees."""
    everything = frozenset(o.id for o in scene.objects)
    (suffix,) = family.slots
    step = next(s for s in family.steps if s.function == "ordinal")
    rank_placeholder, side_placeholder = ordinal_placeholders(step.params)
    for i in rng.permutation(len(RELATIONS)):
        side = RELATIONS[i]

        def ranks(members: frozenset[int]) -> bool:
            return len(members) >= 2 and members - {referent} <= anchors and any(
                programs.kth_from(scene, members, side, int(k)) == referent for k in ORDINALS)

        found = choose_set(scene, referent, everything, _allowed(family, suffix, None), said_weights, rng, accept=ranks)
        if found is not None:
            said, members = found
            k = next(k for k in ORDINALS if programs.kth_from(scene, members, side, int(k)) == referent)
            return Instance(family, ((rank_placeholder, k), (side_placeholder, side)), (SlotFill(suffix, referent, said),),
                            counted=members)
    return None


def ordinal_placeholders(params: Sequence[str]) -> tuple[str, str]:
    """(<O...>, <D...>) of an ordinal step, whichever order the template lists them in."""
    return next(p for p in params if p.startswith("<O")), next(p for p in params if p.startswith("<D"))


def _find_joined(family: Family, scene: Scene, referent: int, rng: np.random.Generator,
                 said_weights: Sequence[float], anchors: frozenset[int]) -> Instance | None:
    """Two zero-hop descriptions joined by `union`: "the red cube and the blue sphere" (two uniques) or
    "every object that is a red cube or a sphere" (two sets, disjoint, the first holding `referent`)."""
    everything = frozenset(o.id for o in scene.objects)
    first_suffix, second_suffix = family.slots
    both_unique = family.steps[-2].function == "unique"
    if both_unique:
        said = choose_description(scene, referent, everything, _allowed(family, first_suffix, None), said_weights, rng)
        first = None if said is None else (said, frozenset({referent}))
    else:
        first = choose_set(scene, referent, everything, _allowed(family, first_suffix, None), said_weights, rng,
                           accept=lambda members: True, min_said=1)
    if first is None:
        return None
    others = sorted(anchors - first[1])
    for i in rng.permutation(len(others)):
        other = others[i]
        allowed = _allowed(family, second_suffix, None)
        if both_unique:
            said = choose_description(scene, other, everything, allowed, said_weights, rng)
            second = None if said is None else (said, frozenset({other}))
        else:
            second = choose_set(scene, other, everything, allowed, said_weights, rng,
                                accept=lambda members: not members & first[1], min_said=1)
        if second is not None:
            slots = (SlotFill(first_suffix, referent, first[0]), SlotFill(second_suffix, other, second[0]))
            return Instance(family, (), slots, first[1] | second[1])
    return None


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
    """Attributes this slot may state: not NULL-constrained, not the `compared` one (CLEVR's order)."""
    placeholders = {p for s in family.steps if s.function == "filter" for p in s.params}
    stated = {SLOT_KINDS[kind] for kind in SLOT_KINDS
              if f"<{kind}{suffix}>" in placeholders and f"<{kind}{suffix}>" not in family.null}
    return tuple(a for a in ATTRIBUTES if a in stated and a != compared)


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
    subset = _weighted_pick(valid, [len(s) for s in valid], said_weights, rng)
    if subset is None:
        return None
    target_object = scene.object(target)
    return tuple((a, getattr(target_object, a)) for a in subset)


def _matching(scene: Scene, pool: frozenset[int], said: dict[str, str]) -> frozenset[int]:
    return frozenset(i for i in pool if all(getattr(scene.object(i), a) == v for a, v in said.items()))


def _weighted_pick(options: list, sizes: list[int], said_weights: Sequence[float], rng: np.random.Generator):
    """One of `options`: its size (attributes said) drawn by `said_weights` among the sizes offered, then
    uniformly within that size, as `choose_description` draws."""
    counts = sorted({c for c in sizes if said_weights[c] > 0})
    if not counts:
        return None
    weights = np.array([said_weights[c] for c in counts], dtype=float)
    count = counts[rng.choice(len(counts), p=weights / weights.sum())]
    sized = [o for o, c in zip(options, sizes) if c == count]
    return sized[rng.integers(len(sized))]


def choose_set(scene: Scene, target: int, pool: frozenset[int], allowed: Sequence[str],
               said_weights: Sequence[float], rng: np.random.Generator, accept, min_said: int = 0):
    """(said, members): attributes of `target` whose matches in `pool` (target among them) `accept` takes;
    for plurals ("the red cubes", "all things left of ...") and the sides of an "or"."""
    me = scene.object(target)
    ordered = [a for a in ATTRIBUTES if a in allowed]
    options, sizes = [], []
    for size in range(min_said, len(ordered) + 1):
        for subset in combinations(ordered, size):
            said = tuple((a, getattr(me, a)) for a in subset)
            members = _matching(scene, pool, dict(said))
            if target in members and accept(members):
                options.append((said, members))
                sizes.append(size)
    return _weighted_pick(options, sizes, said_weights, rng)


def choose_absent(scene: Scene, target: int, pool: frozenset[int], allowed: Sequence[str],
                  said_weights: Sequence[float], rng: np.random.Generator):
    """(said, frozenset()): a description that fits nothing in `pool`, made from one that singles
    `target` out by changing one stated value ("the small red cube" where only a large one is). Worded
    like a real object's description, so the words alone do not tell that nothing is meant."""
    me = scene.object(target)
    options, sizes = [], []
    for subset in unique_descriptions(scene, target, pool, allowed):
        for changed in subset:
            for value in VOCABULARY_OF[changed]:
                said = tuple((a, value if a == changed else getattr(me, a)) for a in subset)
                if value != getattr(me, changed) and not _matching(scene, pool, dict(said)):
                    options.append((said, frozenset()))
                    sizes.append(len(subset))
    return _weighted_pick(options, sizes, said_weights, rng)


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
