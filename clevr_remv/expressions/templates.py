"""Loading and validating the expression templates in `templates/` (data, not code).

A template family is one JSON file: a program skeleton with placeholders, constraints and
several phrasings. `lexicon.json` beside them says how every value is worded (synonyms).
Everything is checked at load time, so a typo in a template is a clear `TemplateError`
naming the file, not a silently wrong training label. docs/expressions.md documents the format.

Placeholders are ``<K>`` or ``<Kn>``: K says what fills it, the optional number n names
the object slot (no number and each number are different objects):

    Z size, C colour, M material, S shape   (one filter step describes one object)
    P shape worded in the plural            (instead of S, where a filter ends in a set: "the red cubes")
    R relation (left, right, front, behind), A attribute kind (size, color, material, shape)
    O ordinal (1, 2, 3: "first" ...), D the side it counts from (left, right, front, behind)

A family says which targets its sentences have (`targets`: one object, several, or none) and its
program's shape follows from that (`_check_shape`): chains of up to MAX_HOPS relations, a final set
for several or none, or the `union` of two descriptions ("and", "or").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clevr_remv.scene.vocabulary import (
    ATTRIBUTES,
    COLORS,
    MATERIALS,
    SHAPES,
    SIZES,
)

LEXICON_FILE = "lexicon.json"
RELATIONS: tuple[str, ...] = ("left", "right", "front", "behind")  # rig.ground_directions' keys
SLOT_KINDS: dict[str, str] = {"Z": "size", "C": "color", "M": "material", "S": "shape", "P": "shape"}
PLURAL_KIND = "P"
CHOICE_KINDS: dict[str, str] = {"R": "relation", "A": "attribute", "O": "ordinal", "D": "side"}
STEP_FUNCTIONS: frozenset[str] = frozenset({"scene", "filter", "unique", "relate", "same", "union", "ordinal"})
ORDINALS: tuple[str, ...] = ("1", "2", "3")  # "the third cube from the left" at most: further reads badly
# What a family's sentences name: exactly one object (the published data), several, or none.
TARGET_KINDS: tuple[str, ...] = ("one", "several", "none")
MAX_HOPS = 3  # relations chained in one sentence (--max-hops 1..3)
CONSTRAINT_TYPES: frozenset[str] = frozenset({"NULL", "NULL_SAME"})
VOCABULARY: dict[str, tuple[str, ...]] = {
    "size": tuple(SIZES),
    "color": tuple(COLORS),
    "material": MATERIALS,
    "shape": SHAPES,
    "relation": RELATIONS,
    "attribute": ATTRIBUTES,
    "ordinal": ORDINALS,
    "side": RELATIONS,
}
# Word kinds a lexicon needs only where a family uses them (lexicons older than the ordinal family lack them).
OPTIONAL_WORDS: frozenset[str] = frozenset({"ordinal", "side"})
# Program shapes, one letter per step (scene s, filter f, unique u, relate r, same m, union +). A branch
# describes one object through a chain of relations, each anchor a unique; it ends in `unique` (one
# object) or in the filter's set (several or none). Two zero-hop branches joined by `union` are "and"
# (two uniques) or "or" (two sets).
_STEP_LETTERS = {"scene": "s", "filter": "f", "unique": "u", "relate": "r", "same": "m", "union": "+",
                 "ordinal": "o"}
_CHAIN = rf"sf(?:u[rm]f){{0,{MAX_HOPS}}}"
SHAPES_BY_TARGETS: dict[str, tuple[str, ...]] = {
    "one": (rf"{_CHAIN}u", "sfo"),  # ... or the k-th of a description's set from one side (`--ordinals`)
    "none": (_CHAIN,),
    "several": (_CHAIN, r"sfusfu\+", r"sfsf\+"),
}
PLACEHOLDER = re.compile(r"<([A-Z])(\d*)>")
ANGLE = re.compile(r"<[^<>]*>")


class TemplateError(ValueError):
    """A template or lexicon file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Step:
    """One step of a family's program skeleton; each step takes the previous step's output."""

    function: str  # scene, filter, unique, relate or same
    params: tuple[str, ...]  # placeholders: <Z><C><M><S> for filter, <R> for relate, <A> for same


@dataclass(frozen=True)
class Family:
    """A template family: one program skeleton, its constraints and its phrasings."""

    name: str
    description: str
    weight: float  # share of the pairs this family aims for, relative to the others
    targets: str  # one of TARGET_KINDS
    steps: tuple[Step, ...]
    texts: tuple[str, ...]
    null: frozenset[str]  # placeholders never filled (the attribute is never said)
    null_same: tuple[str, ...]  # <A> placeholders whose chosen attribute no object states
    said_weights: tuple[float, ...] | None  # per-family override of the lexicon's
    source: Path

    @property
    def slots(self) -> tuple[str, ...]:
        """Object slot suffixes in program order: the first anchor (if any) first, the referent last."""
        return tuple(_suffix(s.params[0]) for s in self.steps if s.function == "filter")

    @property
    def relation_steps(self) -> tuple[Step, ...]:
        """The chain's relations in program order (the one nearest the referent last)."""
        return tuple(s for s in self.steps if s.function in ("relate", "same"))

    @property
    def hops(self) -> int:
        return len(self.relation_steps)

    @property
    def joined(self) -> bool:
        """Two descriptions joined by `union` ("and", "or") rather than one chain."""
        return any(s.function == "union" for s in self.steps)

    @property
    def ordinal(self) -> bool:
        """An ordinal family ("the second cube from the left"), used only under `--ordinals`."""
        return any(s.function == "ordinal" for s in self.steps)




@dataclass(frozen=True)
class Lexicon:
    """How values are worded: every value has one or more interchangeable phrasings."""

    words: dict[str, dict[str, tuple[str, ...]]]  # kind -> value -> phrasings
    unnamed_shape: tuple[str, ...]  # said when the shape is not (thing, object)
    said_weights: tuple[float, ...]  # weight of saying 0..4 attributes of an object
    source: Path
    plural: dict[str, tuple[str, ...]] | None = None  # shape -> plural phrasings (cubes, blocks); <P>
    unnamed_plural: tuple[str, ...] = ()  # things, objects


@dataclass(frozen=True)
class TemplateSet:
    families: tuple[Family, ...]
    lexicon: Lexicon
    root: Path
    # How a scene's turns pick a family (expressions/pairs.py): "deficit", the published rule, or "weighted",
    # the extended language's (select_families says why).
    mix: str = "deficit"

    def family(self, name: str) -> Family:
        for f in self.families:
            if f.name == name:
                return f
        raise KeyError(name)


def default_template_dir() -> Path:
    """The templates shipped inside the package, else the checkout's `templates/`.

    Wheels (every non-editable install) carry a copy as `clevr_remv/templates/` (setup.py
    makes it); an editable install has none there and reads the repository's folder, which
    is where users edit them.
    """
    package = Path(__file__).resolve().parents[1]
    shipped = package / "templates"
    return shipped if shipped.is_dir() else package.parent / "templates"


def load_templates(path: str | Path | None = None) -> TemplateSet:
    """Every family (`*.json` except the lexicon) and the lexicon of a template folder."""
    root = Path(path) if path is not None else default_template_dir()
    if not root.is_dir():
        raise TemplateError(f"{root}: template folder not found")
    lexicon = parse_lexicon(_read_json(root / LEXICON_FILE), root / LEXICON_FILE)
    files = sorted(p for p in root.glob("*.json") if p.name != LEXICON_FILE)
    if not files:
        raise TemplateError(f"{root}: no template family files (*.json besides {LEXICON_FILE})")
    families = tuple(parse_family(_read_json(p), p) for p in files)
    seen: dict[str, Path] = {}
    for f in families:
        if f.name in seen:
            raise TemplateError(f"{f.source}: family name {f.name!r} already used by {seen[f.name]}")
        seen[f.name] = f.source
        if any(_kind(p) == PLURAL_KIND for s in f.steps for p in s.params) and lexicon.plural is None:
            raise TemplateError(f"{f.source}: uses <P> (plural shapes) but {lexicon.source} has no plural_shape")
        lacking = sorted({CHOICE_KINDS[_kind(p)] for s in f.steps for p in s.params if _kind(p) in CHOICE_KINDS}
                         - set(lexicon.words))
        if lacking:
            raise TemplateError(f"{f.source}: needs words.{lacking[0]} in {lexicon.source}")
    return TemplateSet(families, lexicon, root)


def select_families(templates: TemplateSet, max_hops: int, targets: str, ordinals: bool = False) -> TemplateSet:
    """The families a dataset's language options allow (`--max-hops`, `--targets one|any`, `--ordinals`), in
    file order.

    With the published options (1, one) that is exactly the published families, so the expression
    stream draws as it always did and the default dataset's sentences stay byte-identical.
    """
    if not 0 <= max_hops <= MAX_HOPS:
        raise ValueError(f"--max-hops must be 0..{MAX_HOPS}, got {max_hops}")
    if targets not in ("one", "any"):
        raise ValueError(f"--targets must be one or any, got {targets!r}")
    chosen = tuple(f for f in templates.families
                   if f.hops <= max_hops and (targets == "any" or f.targets == "one") and (ordinals or not f.ordinal))
    if not chosen:
        raise TemplateError(f"{templates.root}: no template family fits --max-hops {max_hops} --targets {targets}")
    # The published rule gives each turn to the family furthest behind its share within the scene: with three
    # families and 8 pairs each gets its share in every scene. With up to a dozen families a light one is
    # never furthest behind in 8 turns and would never be said; the extended language draws instead.
    published = max_hops <= 1 and targets == "one" and not ordinals
    return TemplateSet(chosen, templates.lexicon, templates.root, "deficit" if published else "weighted")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise TemplateError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TemplateError(f"{path}: not valid JSON: {error}") from None


def _fail(path: Path, message: str) -> TemplateError:
    return TemplateError(f"{path}: {message}")


def _suffix(placeholder: str) -> str:
    match = PLACEHOLDER.fullmatch(placeholder)
    return match.group(2) if match else ""


def _kind(placeholder: str) -> str:
    match = PLACEHOLDER.fullmatch(placeholder)
    return match.group(1) if match else ""


def _require(d: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str = "") -> Any:
    if not isinstance(d, dict):
        raise _fail(path, f"{where or 'top level'} must be a JSON object")
    if key not in d:
        raise _fail(path, f"{where + ': ' if where else ''}missing key {key!r}")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _fail(path, f"{where + ': ' if where else ''}{key!r} must be a {names}, got {value!r}")
    return value


def parse_family(d: Any, path: Path) -> Family:
    """Build and check one family; every problem is reported with the file name."""
    name = _require(d, "family", str, path)
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise _fail(path, f"family name {name!r} must be lower-case letters, digits and _")
    known = {"family", "description", "weight", "targets", "program", "constraints", "texts", "said_weights"}
    unknown = set(d) - known
    if unknown:
        raise _fail(path, f"unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    weight = float(_require(d, "weight", (int, float), path)) if "weight" in d else 1.0
    if not math.isfinite(weight) or weight <= 0:
        raise _fail(path, f"weight must be a positive number, got {weight}")
    targets = d.get("targets", "one")
    if not isinstance(targets, str) or targets not in TARGET_KINDS:
        raise _fail(path, f"targets must be one of {', '.join(TARGET_KINDS)}, got {targets!r}")
    steps = _parse_program(_require(d, "program", list, path), targets, path)
    placeholders = {p for s in steps for p in s.params}
    null, null_same = _parse_constraints(d.get("constraints", []), placeholders, path)
    texts = tuple(_parse_text(t, i, placeholders, path) for i, t in enumerate(_require(d, "texts", list, path)))
    if not texts:
        raise _fail(path, "texts must list at least one phrasing")
    said = _parse_said_weights(d["said_weights"], path) if "said_weights" in d else None
    description = d.get("description", "")
    return Family(name, str(description), weight, targets, steps, texts, null, null_same, said, path)


def _parse_program(raw: list[Any], targets: str, path: Path) -> tuple[Step, ...]:
    steps = tuple(_parse_step(s, i, path) for i, s in enumerate(raw))
    _check_shape(steps, targets, path)
    slots = [_suffix(s.params[0]) for s in steps if s.function == "filter"]
    if len(set(slots)) != len(slots):
        raise _fail(path, f"two filter steps describe the same object slot {slots}; number the second (<Z2> ...)")
    return steps


def _check_shape(steps: tuple[Step, ...], targets: str, path: Path) -> None:
    """The program is one of the shapes its `targets` allow, and <P> (plural) only ends a set."""
    functions = tuple(s.function for s in steps)
    letters = "".join(_STEP_LETTERS[f] for f in functions)
    if not any(re.fullmatch(shape, letters) for shape in SHAPES_BY_TARGETS[targets]):
        wanted = {
            "one": (f"scene, filter, then up to {MAX_HOPS} times unique, relate or same, filter; then unique "
                    "(or scene, filter, ordinal)"),
            "none": f"scene, filter, then up to {MAX_HOPS} times unique, relate or same, filter (ending in the set)",
            "several": (f"scene, filter, then up to {MAX_HOPS} times unique, relate or same, filter (ending in the "
                        "set); or two zero-hop descriptions (scene, filter[, unique]) joined by union"),
        }[targets]
        raise _fail(path, f"program of a family with targets {targets!r} must be {wanted} "
                    f"(at most {MAX_HOPS} hops); got {', '.join(functions) or 'nothing'}")
    for i, step in enumerate(steps):
        # Only a set that is the answer reads as a plural ("the red cubes"): an ordinal's set and the sides of
        # an "or" are said one object at a time ("the second cube", "a red cube or a ball").
        ends_program = step.function == "filter" and i + 1 == len(steps)
        plural = any(_kind(p) == PLURAL_KIND for p in step.params)
        if plural and not ends_program:
            raise _fail(path, f"program[{i}]: <P> (a plural shape) only where the program ends in the filter's "
                        "set; use <S>")


def _parse_step(raw: Any, index: int, path: Path) -> Step:
    where = f"program[{index}]"
    function = _require(raw, "function", str, path, where)
    if function not in STEP_FUNCTIONS:
        raise _fail(path, f"{where}: unknown function {function!r}; use one of {sorted(STEP_FUNCTIONS)}")
    unknown = set(raw) - {"function", "value_inputs"}
    if unknown:
        raise _fail(path, f"{where}: unknown keys {sorted(unknown)}; a step has function and value_inputs")
    params = raw.get("value_inputs", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise _fail(path, f"{where}: value_inputs must be a list of placeholder strings, got {params!r}")
    params = tuple(params)
    expected = {"scene": "", "unique": "", "union": "", "filter": "ZCMS", "relate": "R", "same": "A",
                "ordinal": "OD"}[function]
    kinds = "".join(_kind(p) or "?" for p in params)
    if function == "filter" and PLURAL_KIND in kinds:
        expected = expected.replace("S", PLURAL_KIND)
    if sorted(kinds) != sorted(expected):
        wanted = " ".join(f"<{k}>" for k in expected) or "no value_inputs"
        raise _fail(path, f"{where} ({function}): value_inputs must be {wanted} (same number on each), "
                    f"got {list(params)}")
    if len({_suffix(p) for p in params}) > 1:
        raise _fail(path, f"{where} ({function}): placeholders {list(params)} mix object slots")
    return Step(function, params)


def _parse_constraints(raw: Any, placeholders: set[str], path: Path) -> tuple[frozenset[str], tuple[str, ...]]:
    if not isinstance(raw, list):
        raise _fail(path, f"constraints must be a list, got {raw!r}")
    null: set[str] = set()
    null_same: list[str] = []
    for i, c in enumerate(raw):
        where = f"constraints[{i}]"
        kind = _require(c, "type", str, path, where)
        params = _require(c, "params", list, path, where)
        if kind not in CONSTRAINT_TYPES:
            raise _fail(path, f"{where}: unknown type {kind!r}; use one of {sorted(CONSTRAINT_TYPES)}")
        allowed = "ZCMSP" if kind == "NULL" else "A"
        for p in params:
            if p not in placeholders or _kind(p) not in allowed:
                raise _fail(path, f"{where} ({kind}): {p!r} is not a program placeholder of kind {'/'.join(allowed)}")
        (null.update if kind == "NULL" else null_same.extend)(params)
    return frozenset(null), tuple(null_same)


def _parse_text(text: Any, index: int, placeholders: set[str], path: Path) -> str:
    where = f"texts[{index}]"
    if not isinstance(text, str) or not text.strip():
        raise _fail(path, f"{where} must be a non-empty string, got {text!r}")
    used = ANGLE.findall(text)
    for p in used:
        if p not in placeholders:
            raise _fail(path, f"{where}: placeholder {p} is not in the program {sorted(placeholders)}")
    if "<" in ANGLE.sub("", text) or ">" in ANGLE.sub("", text):
        raise _fail(path, f"{where}: unbalanced '<' or '>' in {text!r}")
    for p in sorted(placeholders):
        if used.count(p) != 1:
            # A filtered attribute that the sentence does not say would make a wrong label.
            raise _fail(path, f"{where}: placeholder {p} must appear exactly once, appears {used.count(p)} times")
    return text


def _parse_said_weights(raw: Any, path: Path) -> tuple[float, ...]:
    ok = isinstance(raw, list) and len(raw) == len(ATTRIBUTES) + 1
    ok = ok and all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in raw)
    if not ok or not any(raw[1:]):
        raise _fail(path, f"said_weights must be {len(ATTRIBUTES) + 1} non-negative numbers (weights of "
                    f"saying 0..{len(ATTRIBUTES)} attributes), not all zero beyond 0; got {raw!r}")
    return tuple(float(w) for w in raw)


def parse_lexicon(d: Any, path: Path) -> Lexicon:
    """Every vocabulary value needs at least one phrasing; unknown values are typos."""
    raw_words = _require(d, "words", dict, path)
    allowed_keys = ("description", "words", "unnamed_shape", "said_weights", "plural_shape", "unnamed_plural")
    unknown = set(d) - set(allowed_keys)
    if unknown:
        raise _fail(path, f"unknown keys {sorted(unknown)}; allowed: {', '.join(allowed_keys)}")
    words: dict[str, dict[str, tuple[str, ...]]] = {}
    for kind, values in VOCABULARY.items():
        if kind in OPTIONAL_WORDS and kind not in raw_words:
            continue
        table = _require(raw_words, kind, dict, path, "words")
        extra = set(table) - set(values)
        if extra:
            raise _fail(path, f"words.{kind}: unknown values {sorted(extra)}; known: {list(values)}")
        words[kind] = {v: _phrasings(table.get(v), f"words.{kind}.{v}", path) for v in values}
    unnamed = _phrasings(d.get("unnamed_shape"), "unnamed_shape", path)
    said = _parse_said_weights(_require(d, "said_weights", list, path), path)
    if "plural_shape" not in d:
        return Lexicon(words, unnamed, said, path)
    table = _require(d, "plural_shape", dict, path)
    if set(table) != set(SHAPES):
        raise _fail(path, f"plural_shape must give every shape {list(SHAPES)}, got {sorted(table)}")
    plural = {v: _phrasings(table[v], f"plural_shape.{v}", path) for v in SHAPES}
    unnamed_plural = _phrasings(d.get("unnamed_plural"), "unnamed_plural", path)
    return Lexicon(words, unnamed, said, path, plural, unnamed_plural)


def _phrasings(raw: Any, where: str, path: Path) -> tuple[str, ...]:
    ok = isinstance(raw, list) and raw and all(isinstance(w, str) and w.strip() for w in raw)
    if not ok:
        raise _fail(path, f"{where} must be a non-empty list of non-empty strings, got {raw!r}")
    for w in raw:
        if "<" in w or ">" in w:
            raise _fail(path, f"{where}: {w!r} must not contain '<' or '>'")
    return tuple(" ".join(w.split()) for w in raw)
