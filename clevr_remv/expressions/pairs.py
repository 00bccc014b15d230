"""Choosing a scene's referring pairs: balanced over objects and families, checked, filtered.

Objects take turns in a random order (so every object gets a pair before any gets two),
and each turn goes to the family furthest behind its share (the published language; the extended
one draws families by weight, `_families_by_draw`), so a scene's pairs are spread over them. Every candidate is re-run through the evaluator; duplicates are refused.
Under `--targets any` the turn's object is one of the sentence's targets, or (no target) the
object whose description was changed until it fits nothing.

Occlusion rule (decided here): a pair is dropped when its referent (any of its targets) *or its
related object* is below the visibility threshold in the central view. A sentence about an object the
viewer cannot see is a bad label either way: the referent cannot be segmented, and a
hidden anchor cannot be checked. Dropped pairs are counted and replaced from the rest;
a hidden object is then never proposed again, as referent (or target) or as anchor. Uniqueness is still judged on
the whole scene, hidden objects included, which can only make sentences stricter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from clevr_remv.expressions.programs import relation_count, targets, to_json
from clevr_remv.expressions.realise import realise
from clevr_remv.expressions.search import Instance, find_instance
from clevr_remv.expressions.templates import Family, TemplateSet
from clevr_remv.scene.description import Scene
from clevr_remv.store.records import Ref

PAIRS_PER_SCENE = 8  # published: 7-8 (55,966 pairs / 7,000 train scenes)
DRAWS_PER_TURN = 6  # fresh draws for a new sentence before a (referent, family) is exhausted
ID_STRIDE = 1000  # refs/id = scene.index * ID_STRIDE + k
EXPRESSION_STREAM = 1  # the scene seed's sub-stream reserved for expressions


@dataclass(frozen=True)
class Candidate:
    family: str
    referent: int  # the turn's object (see the module's docstring)
    targets: frozenset[int]
    anchors: tuple[int, ...]  # the other objects the sentence names (the related objects)
    program: str
    expression: str


# Why a candidate sentence was not kept (ExpressionResult.rejected; the note of issue #24 reports them).
REJECTED_CHECK = "program check"  # the evaluator disagreed with the search: never expected
REJECTED_HOPS = "too many hops"
REJECTED_REPEAT = "repeated program or sentence"
REJECTED_HIDDEN_TARGET = "a target known hidden"


# How many targets each kind of family must name (templates.TARGET_KINDS).
COUNT_FITS = {"one": lambda n: n == 1, "several": lambda n: n >= 2, "none": lambda n: n == 0}


@dataclass
class ExpressionResult:
    """A scene's pairs plus what the occlusion filter removed (for the dataset's statistics)."""

    refs: list[Ref]
    dropped_referent: int = 0  # pairs removed: a target (the referent) hidden in the central view
    dropped_related: int = 0  # pairs removed: related object hidden in the central view
    rejected: Counter = field(default_factory=Counter)  # candidates refused by the checks, by reason

    @property
    def dropped(self) -> int:
        return self.dropped_referent + self.dropped_related


@dataclass
class _State:
    """What the selection has done so far in one scene."""

    kept: list[Candidate] = field(default_factory=list)
    programs: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)
    exhausted: set[tuple[int, str]] = field(default_factory=set)
    hidden_anchors: set[int] = field(default_factory=set)  # objects known hidden in the central view
    dropped_referent: int = 0
    dropped_related: int = 0
    rejected: Counter = field(default_factory=Counter)


def expression_rng(scene: Scene) -> np.random.Generator:
    """The scene's own expression stream: independent of how many layout draws it took."""
    return np.random.default_rng(np.random.SeedSequence([*scene.seed, EXPRESSION_STREAM]))


def generate_pairs(
    scene: Scene,
    visible_pixels: np.ndarray,
    min_visible: int,
    templates: TemplateSet,
    pairs: int = PAIRS_PER_SCENE,
) -> ExpressionResult:
    """Up to `pairs` checked, distinct, visible referring pairs for one scene (deterministic).

    `templates` holds the families the dataset's language options allow (templates.select_families).
    """
    visible = _visibility(scene, visible_pixels, min_visible)
    centre = visible[scene.rig.centre_view]
    rng = expression_rng(scene)
    state = _State()
    order = [int(i) for i in rng.permutation([o.id for o in scene.objects])]
    turn = 0
    while len(state.kept) < pairs and order:
        referent = order[turn % len(order)]
        candidate = _candidate(scene, referent, templates, state, rng)
        hidden_targets = set() if candidate is None else {t for t in candidate.targets if not centre[t - 1]}
        if candidate is None:
            order.remove(referent)  # nothing left to say about it; the next object takes the turn
        elif hidden_targets:
            state.dropped_referent += 1
            # A hidden object is never a target again: its own turn would only be dropped once more. (With one
            # referent, the published language, the hidden target is the turn's object, as it always was.)
            for hidden in sorted(hidden_targets - {referent}):
                if hidden in order:
                    if order.index(hidden) < turn % len(order):
                        turn -= 1  # the turn stays on the object it was on
                    order.remove(hidden)
            if referent in hidden_targets:
                order.remove(referent)
            state.hidden_anchors.update(hidden_targets)  # known hidden: not proposed as an anchor or target
        elif any(not centre[m - 1] for m in candidate.anchors):
            state.dropped_related += 1  # never picked again as an anchor: the loop moves on
            state.hidden_anchors.update(m for m in candidate.anchors if not centre[m - 1])
        else:
            _keep(candidate, state)
            turn += 1
    refs = [_ref(scene, k, c, visible) for k, c in enumerate(state.kept)]
    rejected = state.rejected + Counter({"target hidden (central view)": state.dropped_referent,
                                         "related object hidden (central view)": state.dropped_related})
    return ExpressionResult(refs, state.dropped_referent, state.dropped_related, +rejected)


def _visibility(scene: Scene, visible_pixels: np.ndarray, min_visible: int) -> np.ndarray:
    """(V, objects) bool: visible at or above the threshold; checks the array's shape first."""
    counts = np.asarray(visible_pixels)
    views, n = scene.rig.views, len(scene.objects)
    if counts.ndim != 2 or counts.shape[0] != views or counts.shape[1] < n:
        raise ValueError(f"visible_pixels must be ({views}, >= {n}) for this scene, got {counts.shape}")
    return counts[:, :n] >= min_visible


def _candidate(
    scene: Scene,
    referent: int,
    templates: TemplateSet,
    state: _State,
    rng: np.random.Generator,
) -> Candidate | None:
    """A new, checked sentence for `referent` from the family most behind its share."""
    anchors = frozenset(o.id for o in scene.objects) - state.hidden_anchors
    by = _families_by_need if templates.mix == "deficit" else _families_by_draw
    for family in by(templates.families, state, rng):
        if (referent, family.name) in state.exhausted:
            continue
        weights = family.said_weights or templates.lexicon.said_weights
        for _ in range(DRAWS_PER_TURN):
            instance = find_instance(family, scene, referent, rng, weights, anchors)
            if instance is None:
                break
            candidate = _checked(scene, instance, templates, rng, state)
            if candidate is not None and _is_new(candidate, state):
                return candidate
            if candidate is not None:
                state.rejected[REJECTED_REPEAT] += 1
        state.exhausted.add((referent, family.name))
    return None


def _families_by_need(families: tuple[Family, ...], state: _State, rng: np.random.Generator) -> list[Family]:
    """Families ordered by how far their count is behind their weight's share (ties at random)."""
    total = sum(f.weight for f in families)
    done = {f.name: 0 for f in families}
    for c in state.kept:
        done[c.family] = done.get(c.family, 0) + 1
    due = len(state.kept) + 1
    jitter = rng.random(len(families))
    keys = [(done[f.name] - due * f.weight / total, j) for f, j in zip(families, jitter)]
    return [families[i] for i in sorted(range(len(families)), key=lambda i: keys[i])]


def _families_by_draw(families: tuple[Family, ...], state: _State, rng: np.random.Generator) -> list[Family]:
    """Families in a random order where each comes first with odds weight / (1 + times used in this
    scene): an exponential race, so over a dataset the shares follow the weights, and a family already
    said in this scene gives way to the others."""
    done = Counter(c.family for c in state.kept)
    race = rng.exponential(size=len(families))
    keys = [race[i] * (1 + done[f.name]) / f.weight for i, f in enumerate(families)]
    return [families[i] for i in sorted(range(len(families)), key=lambda i: keys[i])]


def _checked(scene: Scene, instance: Instance, templates: TemplateSet, rng: np.random.Generator,
             state: _State) -> Candidate | None:
    """The evaluator is the judge: keep only a program within its family's hops whose answer is exactly
    the search's target set (one object, several, or none)."""
    program = instance.program()
    if relation_count(program) > instance.family.hops:
        state.rejected[REJECTED_HOPS] += 1
        return None
    named = targets(program, scene)
    if named != instance.target_set or not COUNT_FITS[instance.family.targets](len(named)):
        state.rejected[REJECTED_CHECK] += 1
        return None
    if (named - {instance.referent}) & state.hidden_anchors:  # another target already known hidden
        state.rejected[REJECTED_HIDDEN_TARGET] += 1
        return None
    text = realise(instance, templates.lexicon, rng)
    return Candidate(instance.family.name, instance.referent, named, instance.anchors, to_json(program), text)


def _is_new(candidate: Candidate, state: _State) -> bool:
    """No repeated program (same meaning) and no repeated sentence within a scene."""
    return candidate.program not in state.programs and candidate.expression not in state.texts


def _keep(candidate: Candidate, state: _State) -> None:
    state.kept.append(candidate)
    state.programs.add(candidate.program)
    state.texts.add(candidate.expression)


def _ref(scene: Scene, k: int, c: Candidate, visible: np.ndarray) -> Ref:
    if k >= ID_STRIDE:
        raise ValueError(f"at most {ID_STRIDE} pairs per scene keep refs/id unique")
    named = sorted(c.targets)
    return Ref(
        id=scene.index * ID_STRIDE + k,
        object=named[0] if len(named) == 1 else 0,
        expression=c.expression,
        family=c.family,
        program=c.program,
        visible=visible[:, [t - 1 for t in named]].all(axis=1),  # no target: nothing to hide, true
        targets=tuple(named),
    )
