"""Functional programs and their evaluator: the ground truth behind every sentence.

A sentence is only as trustworthy as the program it realises, so programs are plain data
(a JSON list of nodes, CLEVR v1.0's question-program format) and the evaluator below is
the single judge of what a program refers to. The engine keeps a sentence only when its
program, run on the scene description, returns exactly its targets: one object (a program
ending in `unique`), or a set of several or none (a program ending in a set, `--targets any`).

A node is ``{"function": name, "inputs": [node indices], "value_inputs": [strings]}``:

==================  ============  ==========  =============================================
function            input         output      meaning
==================  ============  ==========  =============================================
scene               none          set         every object of the scene
filter_<attr>       set           set         objects whose <attr> equals value_inputs[0]
unique              set           object      the only member; no answer if 0 or 2+
relate              object        set         objects value_inputs[0] (left, right, front,
                                              behind) of it, CLEVR's rule (`relation_holds`)
same_<attr>         object        set         other objects sharing its <attr> (itself
                                              excluded, as in CLEVR)
union               two sets or   set         the objects of either input (`and`, `or`);
                    objects                   an object counts as the set of itself
ordinal             set           object      the k-th member counted from one side:
                                              value_inputs [side, k], side left, right,
                                              front or behind; no answer where another
                                              member is in the dead band beside it
==================  ============  ==========  =============================================

<attr> is one of size, color, material, shape. Objects are 1-based ids, as in the masks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Union

from clevr_remv.scene.description import Scene
from clevr_remv.scene.layout import relation_holds
from clevr_remv.scene.vocabulary import ATTRIBUTES

Node = dict[str, Any]
Program = list[Node]
# A set of object ids, one object id, or None when a `unique` found 0 or 2+ objects.
Value = Union[frozenset[int], int, None]

FILTER_FUNCTIONS: dict[str, str] = {f"filter_{a}": a for a in ATTRIBUTES}
SAME_FUNCTIONS: dict[str, str] = {f"same_{a}": a for a in ATTRIBUTES}
RELATION_FUNCTIONS: frozenset[str] = frozenset({"relate", *SAME_FUNCTIONS})
FUNCTIONS: frozenset[str] = frozenset({"scene", "unique", "union", "ordinal", *FILTER_FUNCTIONS,
                                       *RELATION_FUNCTIONS})
RANK_THRESHOLD = 0.2  # as close along the side's axis as CLEVR's relation dead band: no telling which is first


class ProgramError(ValueError):
    """A program that is malformed (unknown function, bad inputs), as opposed to one with no answer."""


def node(function: str, inputs: Sequence[int] = (), values: Sequence[str] = ()) -> Node:
    """One node in the stored format (all three keys always present, for readers' sake)."""
    return {"function": function, "inputs": list(inputs), "value_inputs": list(values)}


def to_json(program: Program) -> str:
    """The `refs/program` string: compact and key-ordered, so equal programs give equal strings."""
    return json.dumps(program, separators=(",", ":"), sort_keys=True)


def from_json(text: str) -> Program:
    program = json.loads(text)
    if not isinstance(program, list) or not all(isinstance(n, dict) for n in program):
        raise ProgramError(f"a program is a JSON list of node objects, got {text[:80]!r}")
    return program


@lru_cache(maxsize=65_536)
def hops_of(text: str) -> int:
    """`relation_count` of a stored `refs/program` string; cached, since programs repeat across scenes.
    A malformed string raises as `from_json` does (ProgramError, json's ValueError)."""
    return relation_count(from_json(text))


def relation_count(program: Program) -> int:
    """How many hops the program makes (`--max-hops` bounds it; the published data has at most one)."""
    return sum(n["function"] in RELATION_FUNCTIONS for n in program)


def execute(program: Program, scene: Scene) -> list[Value]:
    """Every node's output, in order; later nodes see earlier outputs through `inputs`."""
    outputs: list[Value] = []
    for index, n in enumerate(program):
        inputs = n.get("inputs", [])
        if any(not isinstance(i, int) or not 0 <= i < index for i in inputs):
            raise ProgramError(f"node {index} ({n.get('function')}): inputs {inputs} must name earlier nodes")
        outputs.append(_apply(n, [outputs[i] for i in inputs], scene, index))
    return outputs


def evaluate(program: Program, scene: Scene) -> int | None:
    """The object the program refers to, or None when it does not name exactly one."""
    if not program:
        raise ProgramError("empty program")
    result = execute(program, scene)[-1]
    if result is not None and not isinstance(result, int):
        raise ProgramError("program ends in a set, not an object: add a final unique")
    return result


def targets(program: Program, scene: Scene) -> frozenset[int] | None:
    """The objects the program names: its one object, or its final set (several or none); None when
    a `unique` on the way found 0 or 2+ objects, or an `ordinal` no definite object (the sentence names
    nothing definite)."""
    if not program:
        raise ProgramError("empty program")
    result = execute(program, scene)[-1]
    if result is None:
        return None
    return frozenset({result}) if isinstance(result, int) else result


def unique_inputs(program: Program, scene: Scene) -> list[Value]:
    """The set each `unique` node receives: exactly one member each when the program is valid."""
    outputs = execute(program, scene)
    return [outputs[n["inputs"][0]] for n in program if n["function"] == "unique"]


def mentioned_objects(program: Program, scene: Scene) -> list[int | None]:
    """The objects a sentence names one by one (outputs of `unique`): a chain's anchors, then its referent
    where it ends in `unique`."""
    outputs = execute(program, scene)
    return [out for n, out in zip(program, outputs) if n["function"] == "unique"]  # type: ignore[misc]


def _apply(n: Node, inputs: list[Value], scene: Scene, index: int) -> Value:
    function = n.get("function")
    values = n.get("value_inputs", [])
    if function not in FUNCTIONS:
        raise ProgramError(f"node {index}: unknown function {function!r}")
    expected = {"scene": 0, "union": 2}.get(function, 1)
    if len(inputs) != expected:
        raise ProgramError(f"node {index} ({function}): takes {expected} input(s), got {len(inputs)}")
    if function == "scene":
        return frozenset(o.id for o in scene.objects)
    if any(i is None for i in inputs):  # an earlier unique failed: no answer propagates
        return None
    if function == "union":
        return frozenset().union(*({i} if isinstance(i, int) else i for i in inputs))
    if function in FILTER_FUNCTIONS:
        return _filter(scene, _as_set(inputs[0], n, index), FILTER_FUNCTIONS[function], _one_value(values, n, index))
    if function == "unique":
        members = _as_set(inputs[0], n, index)
        return next(iter(members)) if len(members) == 1 else None
    if function == "ordinal":
        if len(values) != 2 or not str(values[1]).isdigit():
            raise ProgramError(f"node {index} (ordinal): value_inputs must be [side, k], got {values}")
        return kth_from(scene, _as_set(inputs[0], n, index), values[0], int(values[1]))
    anchor = _as_object(inputs[0], n, index)
    if function == "relate":
        return relate_set(scene, anchor, _one_value(values, n, index))
    return same_set(scene, anchor, SAME_FUNCTIONS[function])


def _filter(scene: Scene, members: frozenset[int], attribute: str, value: str) -> frozenset[int]:
    return frozenset(i for i in members if getattr(scene.object(i), attribute) == value)


def kth_from(scene: Scene, members: frozenset[int], side: str, k: int) -> int | None:
    """The member that is k-th (1 = nearest) from `side` (left, right, front, behind of the central camera),
    or None when there are fewer than k or another member lies in the dead band beside it along that axis
    (its rank would be a guess)."""
    if side not in scene.directions:
        raise ProgramError(f"unknown side {side!r}, expected one of {sorted(scene.directions)}")
    axis = scene.directions[side][:2]
    along = {i: scene.object(i).position[0] * axis[0] + scene.object(i).position[1] * axis[1] for i in members}
    ranked = sorted(along, key=lambda i: -along[i])
    if not 1 <= k <= len(ranked):
        return None
    chosen = ranked[k - 1]
    if any(abs(along[i] - along[chosen]) <= RANK_THRESHOLD for i in ranked if i != chosen):
        return None
    return chosen


def relate_set(scene: Scene, anchor: int, relation: str) -> frozenset[int]:
    """Objects `relation` of the anchor, by the scene's stored camera directions."""
    if relation not in scene.directions:
        raise ProgramError(f"unknown relation {relation!r}, expected one of {sorted(scene.directions)}")
    b = scene.object(anchor)
    direction = scene.directions[relation]
    return frozenset(a.id for a in scene.objects if a.id != anchor and relation_holds(a, b, direction))


def same_set(scene: Scene, anchor: int, attribute: str) -> frozenset[int]:
    """Other objects sharing the anchor's attribute; the anchor itself never counts."""
    value = getattr(scene.object(anchor), attribute)
    return frozenset(a.id for a in scene.objects if a.id != anchor and getattr(a, attribute) == value)


def _one_value(values: Sequence[str], n: Node, index: int) -> str:
    if len(values) != 1 or not isinstance(values[0], str):
        raise ProgramError(f"node {index} ({n.get('function')}): needs exactly one value input, got {values}")
    return values[0]


def _as_set(value: Value, n: Node, index: int) -> frozenset[int]:
    if not isinstance(value, frozenset):
        raise ProgramError(f"node {index} ({n.get('function')}): needs a set of objects, got one object")
    return value


def _as_object(value: Value, n: Node, index: int) -> int:
    if isinstance(value, frozenset):
        raise ProgramError(f"node {index} ({n.get('function')}): needs one object (a unique), got a set")
    return value  # type: ignore[return-value]
