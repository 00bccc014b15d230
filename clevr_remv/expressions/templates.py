"""Loading and validating the expression templates in `templates/` (data, not code).

A template family is one JSON file: a program skeleton with placeholders, constraints and
several phrasings. `lexicon.json` beside them says how every value is worded (synonyms).
Everything is checked at load time, so a typo in a template is a clear `TemplateError`
naming the file, not a silently wrong training label. docs/expressions.md documents the format.

Placeholders are ``<K>`` or ``<Kn>``: K says what fills it, the optional number n names
the object slot (no number and each number are different objects):

    Z size, C colour, M material, S shape   (one filter step describes one object)
    R relation (left, right, front, behind), A attribute kind (size, color, material, shape)
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
SLOT_KINDS: dict[str, str] = {"Z": "size", "C": "color", "M": "material", "S": "shape"}
CHOICE_KINDS: dict[str, str] = {"R": "relation", "A": "attribute"}
STEP_FUNCTIONS: frozenset[str] = frozenset({"scene", "filter", "unique", "relate", "same"})
CONSTRAINT_TYPES: frozenset[str] = frozenset({"NULL", "NULL_SAME"})
VOCABULARY: dict[str, tuple[str, ...]] = {
    "size": tuple(SIZES),
    "color": tuple(COLORS),
    "material": MATERIALS,
    "shape": SHAPES,
    "relation": RELATIONS,
    "attribute": ATTRIBUTES,
}
# The only program shapes allowed: zero-hop, or exactly one relation (never two hops).
SHAPES_ALLOWED: tuple[tuple[str, ...], ...] = (
    ("scene", "filter", "unique"),
    ("scene", "filter", "unique", "relate", "filter", "unique"),
    ("scene", "filter", "unique", "same", "filter", "unique"),
)
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
    steps: tuple[Step, ...]
    texts: tuple[str, ...]
    null: frozenset[str]  # placeholders never filled (the attribute is never said)
    null_same: tuple[str, ...]  # <A> placeholders whose chosen attribute no object states
    said_weights: tuple[float, ...] | None  # per-family override of the lexicon's
    source: Path

    @property
    def slots(self) -> tuple[str, ...]:
        """Object slot suffixes in program order: the anchor (if any) first, the referent last."""
        return tuple(_suffix(s.params[0]) for s in self.steps if s.function == "filter")

    @property
    def relation_step(self) -> Step | None:
        return next((s for s in self.steps if s.function in ("relate", "same")), None)


@dataclass(frozen=True)
class Lexicon:
    """How values are worded: every value has one or more interchangeable phrasings."""

    words: dict[str, dict[str, tuple[str, ...]]]  # kind -> value -> phrasings
    unnamed_shape: tuple[str, ...]  # said when the shape is not (thing, object)
    said_weights: tuple[float, ...]  # weight of saying 0..4 attributes of an object
    source: Path


@dataclass(frozen=True)
class TemplateSet:
    families: tuple[Family, ...]
    lexicon: Lexicon
    root: Path

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
    return TemplateSet(families, lexicon, root)


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
    known = {"family", "description", "weight", "program", "constraints", "texts", "said_weights"}
    unknown = set(d) - known
    if unknown:
        raise _fail(path, f"unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    weight = float(_require(d, "weight", (int, float), path)) if "weight" in d else 1.0
    if not math.isfinite(weight) or weight <= 0:
        raise _fail(path, f"weight must be a positive number, got {weight}")
    steps = _parse_program(_require(d, "program", list, path), path)
    placeholders = {p for s in steps for p in s.params}
    null, null_same = _parse_constraints(d.get("constraints", []), placeholders, path)
    texts = tuple(_parse_text(t, i, placeholders, path) for i, t in enumerate(_require(d, "texts", list, path)))
    if not texts:
        raise _fail(path, "texts must list at least one phrasing")
    said = _parse_said_weights(d["said_weights"], path) if "said_weights" in d else None
    description = d.get("description", "")
    return Family(name, str(description), weight, steps, texts, null, null_same, said, path)


def _parse_program(raw: list[Any], path: Path) -> tuple[Step, ...]:
    steps = tuple(_parse_step(s, i, path) for i, s in enumerate(raw))
    functions = tuple(s.function for s in steps)
    if functions not in SHAPES_ALLOWED:
        raise _fail(
            path,
            "program must be scene, filter, unique, optionally followed by one relate or same step, "
            f"filter, unique (at most one relation, never two hops); got {', '.join(functions) or 'nothing'}",
        )
    slots = [_suffix(s.params[0]) for s in steps if s.function == "filter"]
    if len(set(slots)) != len(slots):
        raise _fail(path, f"two filter steps describe the same object slot {slots}; number the second (<Z2> ...)")
    return steps


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
    expected = {"scene": "", "unique": "", "filter": "ZCMS", "relate": "R", "same": "A"}[function]
    kinds = "".join(_kind(p) or "?" for p in params)
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
        allowed = "ZCMS" if kind == "NULL" else "A"
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
    unknown = set(d) - {"description", "words", "unnamed_shape", "said_weights"}
    if unknown:
        raise _fail(path, f"unknown keys {sorted(unknown)}; allowed: description, words, unnamed_shape, said_weights")
    words: dict[str, dict[str, tuple[str, ...]]] = {}
    for kind, values in VOCABULARY.items():
        table = _require(raw_words, kind, dict, path, "words")
        extra = set(table) - set(values)
        if extra:
            raise _fail(path, f"words.{kind}: unknown values {sorted(extra)}; known: {list(values)}")
        words[kind] = {v: _phrasings(table.get(v), f"words.{kind}.{v}", path) for v in values}
    unnamed = _phrasings(d.get("unnamed_shape"), "unnamed_shape", path)
    said = _parse_said_weights(_require(d, "said_weights", list, path), path)
    return Lexicon(words, unnamed, said, path)


def _phrasings(raw: Any, where: str, path: Path) -> tuple[str, ...]:
    ok = isinstance(raw, list) and raw and all(isinstance(w, str) and w.strip() for w in raw)
    if not ok:
        raise _fail(path, f"{where} must be a non-empty list of non-empty strings, got {raw!r}")
    for w in raw:
        if "<" in w or ">" in w:
            raise _fail(path, f"{where}: {w!r} must not contain '<' or '>'")
    return tuple(" ".join(w.split()) for w in raw)
