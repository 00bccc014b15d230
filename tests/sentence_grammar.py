"""An independent reading of the sentences: the grammar that docs/expressions.md publishes ("Grammar", an
```ebnf block), parsed here and interpreted on a scene description (the JSON a shard stores).

Written from the published grammar and the design's rules (shared/DESIGN.md: attributes, the camera's
`directions`, CLEVR's relation rule), not from the template code: nothing here imports
clevr_remv.expressions, so a fault there (a `unique` that takes the first of several objects) shows as a
sentence that names other objects than its referent.

The grammar is ISO EBNF: `name = ... ;`, `,` between the parts of a sequence, `|` between alternatives,
`[ ]` optional, `{ }` repeated, `( )` grouped, `"..."` words, `(* *)` comments. The interpreter below
parses any such grammar (all parses, by backtracking), so a grammar that grows (issue #24: several hops,
plurals) needs new rules in the page and their meaning in `meaning`, not another parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

PAGE = Path(__file__).resolve().parents[1] / "docs" / "expressions.md"
# The relations' dead band: CLEVR's rule says A is left of B when (A - B) . left > 0.2; nearer the axis
# a person could read it either way. The layout keeps every pair 0.4 apart along each direction.
RELATION_THRESHOLD = 0.2


class NotASentence(ValueError):
    """The text is not in the published language, or is in it more than one way."""


# ---------------------------------------------------------------------------- the grammar's own syntax


@dataclass(frozen=True)
class Words:
    words: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    name: str


@dataclass(frozen=True)
class Sequence:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Choice:
    options: tuple[Expr, ...]


@dataclass(frozen=True)
class Optional:
    body: Expr


@dataclass(frozen=True)
class Repeat:
    body: Expr


Expr = Union[Words, Rule, Sequence, Choice, Optional, Repeat]
_EBNF_TOKEN = re.compile(r'\s+|\(\*.*?\*\)|"(?P<words>[^"]*)"|(?P<name>[a-z][a-z0-9_]*)|(?P<symbol>[=,|;\[\]{}()])', re.S)


def grammar_text(page: Path = PAGE) -> str:
    """The ```ebnf block of the page's "Grammar" section."""
    section = page.read_text(encoding="utf-8").split("\n## Grammar\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```ebnf\n(.*?)```", section, flags=re.S)
    if len(blocks) != 1:
        raise ValueError(f"{page}: the Grammar section should hold one ```ebnf block, found {len(blocks)}")
    return blocks[0]


def parse_grammar(text: str) -> dict[str, Expr]:
    """The rules of an ISO EBNF text, by name."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _EBNF_TOKEN.match(text, position)
        if not match:
            raise ValueError(f"EBNF: cannot read {text[position:position + 30]!r}")
        position = match.end()
        if match["words"] is not None:
            tokens.append(("words", match["words"]))
        elif match["name"]:
            tokens.append(("name", match["name"]))
        elif match["symbol"]:
            tokens.append(("symbol", match["symbol"]))
    rules: dict[str, Expr] = {}
    at = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal at
        if at >= len(tokens) or tokens[at][0] != kind or (value is not None and tokens[at][1] != value):
            raise ValueError(f"EBNF: expected {value or kind} at {tokens[at:at + 3]}")
        at += 1
        return tokens[at - 1][1]

    def peek(value: str) -> bool:
        return at < len(tokens) and tokens[at] == ("symbol", value)

    def choice() -> Expr:
        options = [sequence()]
        while peek("|"):
            take("symbol", "|")
            options.append(sequence())
        return options[0] if len(options) == 1 else Choice(tuple(options))

    def sequence() -> Expr:
        parts = [term()]
        while peek(","):
            take("symbol", ",")
            parts.append(term())
        return parts[0] if len(parts) == 1 else Sequence(tuple(parts))

    def term() -> Expr:
        kind, value = tokens[at]
        for opening, closing, make in (("[", "]", Optional), ("{", "}", Repeat), ("(", ")", lambda e: e)):
            if (kind, value) == ("symbol", opening):
                take("symbol", opening)
                body = choice()
                take("symbol", closing)
                return make(body)
        if kind == "words":
            return Words(tuple(take("words").split()))
        return Rule(take("name"))

    while at < len(tokens):
        name = take("name")
        take("symbol", "=")
        if name in rules:
            raise ValueError(f"EBNF: rule {name} is defined twice")
        rules[name] = choice()
        take("symbol", ";")
    undefined = {r.name for expr in rules.values() for r in _rules_in(expr)} - set(rules)
    if undefined:
        raise ValueError(f"EBNF: rules used but not defined: {sorted(undefined)}")
    return rules


def _rules_in(expr: Expr) -> Iterator[Rule]:
    if isinstance(expr, Rule):
        yield expr
    elif isinstance(expr, (Sequence, Choice)):
        for child in expr.parts if isinstance(expr, Sequence) else expr.options:
            yield from _rules_in(child)
    elif isinstance(expr, (Optional, Repeat)):
        yield from _rules_in(expr.body)


# ---------------------------------------------------------------------------- parsing a sentence


@dataclass(frozen=True)
class Node:
    """A rule matched: its name and what it matched (nodes of its sub-rules, and words)."""

    rule: str
    children: tuple[Node | str, ...]

    def find(self, rule: str) -> Node | None:
        """The first node named `rule` at or below this one (depth first), None if there is none."""
        if self.rule == rule:
            return self
        for child in self.children:
            if isinstance(child, Node) and (found := child.find(rule)) is not None:
                return found
        return None

    def child_rule(self) -> str:
        """The name of the one sub-rule this node matched (a value rule's meaning: `large`, `left`, ...)."""
        [child] = [c for c in self.children if isinstance(c, Node)]
        return child.rule


def words_of(sentence: str) -> list[str]:
    """The sentence's words and its final full stop."""
    return re.findall(r"[A-Za-z]+|\.", sentence) if re.fullmatch(r"[A-Za-z .]*", sentence) else [sentence]


class Grammar:
    def __init__(self, rules: dict[str, Expr], start: str = "sentence") -> None:
        self.rules, self.start = rules, start

    def _match(self, expr: Expr, words: list[str], at: int) -> Iterator[tuple[tuple[Node | str, ...], int]]:
        """Every way `expr` matches words[at:]: (what it matched, where it ends)."""
        if isinstance(expr, Words):
            if tuple(words[at:at + len(expr.words)]) == expr.words:
                yield expr.words, at + len(expr.words)
        elif isinstance(expr, Rule):
            for children, end in self._match(self.rules[expr.name], words, at):
                yield (Node(expr.name, children),), end
        elif isinstance(expr, Sequence):
            yield from self._sequence(expr.parts, words, at)
        elif isinstance(expr, Choice):
            for option in expr.options:
                yield from self._match(option, words, at)
        elif isinstance(expr, Optional):
            yield (), at
            yield from self._match(expr.body, words, at)
        else:  # Repeat: none, or one then more (each round must move on)
            yield (), at
            for first, middle in self._match(expr.body, words, at):
                if middle > at:
                    for rest, end in self._match(expr, words, middle):
                        yield first + rest, end

    def _sequence(self, parts: tuple[Expr, ...], words: list[str], at: int):
        if not parts:
            yield (), at
            return
        for first, middle in self._match(parts[0], words, at):
            for rest, end in self._sequence(parts[1:], words, middle):
                yield first + rest, end

    def parse(self, sentence: str) -> Node:
        """The one parse of `sentence`; NotASentence if there is none, or several (an ambiguous grammar)."""
        words = words_of(sentence)
        parses = {children for children, end in self._match(Rule(self.start), words, 0) if end == len(words)}
        if len(parses) != 1:
            raise NotASentence(f"{sentence!r}: {len(parses)} parses by the published grammar")
        [(tree,)] = parses
        return tree


@lru_cache(maxsize=None)
def published_grammar() -> Grammar:
    return Grammar(parse_grammar(grammar_text()))


# ---------------------------------------------------------------------------- what a sentence names

ATTRIBUTES = ("size", "color", "material", "shape")


def described(description: Node, scene: dict[str, Any], pool: set[int]) -> set[int]:
    """The objects of `pool` that have every attribute value the description says (`any_shape`, and
    `any_shapes` in the plural, say none; a plural shape says its singular: `cubes` is `cube`)."""
    said = {attribute: node.child_rule() for attribute in ATTRIBUTES if (node := description.find(attribute))}
    if (plural := description.find("shapes")) is not None:
        said["shape"] = plural.child_rule().removesuffix("s")
    if said.get("shape") == "any_shape":
        del said["shape"]
    return {o["id"] for o in scene["objects"] if o["id"] in pool and all(o[a] == v for a, v in said.items())}


class NamesNothingDefinite(NotASentence):
    """A description that `the` needs to fit exactly one object (an anchor, a link of a chain, a conjunct)
    fits none or several: the sentence names nothing definite."""


def the(description: Node, scene: dict[str, Any]) -> dict[str, Any] | None:
    """`the <description>`: the one object of the scene it fits, None where it fits none or several."""
    return the_among(description, scene, {o["id"] for o in scene["objects"]})


def the_among(description: Node, scene: dict[str, Any], pool: set[int]) -> dict[str, Any] | None:
    fits = described(description, scene, pool)
    return next(o for o in scene["objects"] if o["id"] in fits) if len(fits) == 1 else None


def related(scene: dict[str, Any], anchor: dict[str, Any], relation: str) -> set[int]:
    """The objects `relation` of the anchor by the central camera's ground-plane direction (DESIGN: A is
    left of B when (A - B) . left is positive); an object inside the dead band makes it unreadable."""
    dx, dy = scene["directions"][relation][:2]
    found = set()
    for o in scene["objects"]:
        if o["id"] != anchor["id"]:
            along = (o["position"][0] - anchor["position"][0]) * dx + (o["position"][1] - anchor["position"][1]) * dy
            if abs(along) <= RELATION_THRESHOLD:
                raise NotASentence(f"object {o['id']} is {along:+.2f} {relation} of object {anchor['id']}: ambiguous")
            if along > 0:
                found.add(o["id"])
    return found


def linked(link: Node, scene: dict[str, Any], anchor: dict[str, Any]) -> set[int]:
    """What a link keeps of the scene around `anchor`: a `relation` (relation, relation2 ...) by the
    camera's directions, a `compared` attribute the other objects sharing the anchor's value of it."""
    if (relation := link.find("relation")) is not None:
        return related(scene, anchor, relation.child_rule())
    attribute = link.find("compared").child_rule().removeprefix("compared_")
    return {o["id"] for o in scene["objects"] if o["id"] != anchor["id"] and o[attribute] == anchor[attribute]}


SIDES = {"from_left": "left", "from_right": "right", "from_front": "front", "from_back": "behind"}


def counted_from(scene: dict[str, Any], members: set[int], side: str, rank: int) -> set[int]:
    """The member that is `rank`-th from `side`: the members ordered by how far each lies along the camera's
    `side` direction, furthest first (the first from the left is the leftmost). Another member within the
    dead band of it along that axis makes the count unreadable."""
    dx, dy = scene["directions"][side][:2]
    along = {o["id"]: o["position"][0] * dx + o["position"][1] * dy for o in scene["objects"] if o["id"] in members}
    order = sorted(along, key=lambda i: along[i], reverse=True)
    if rank > len(order):
        return set()
    chosen = order[rank - 1]
    for other in order:
        if other != chosen and abs(along[other] - along[chosen]) <= RELATION_THRESHOLD:
            raise NotASentence(f"objects {other} and {chosen} are {abs(along[other] - along[chosen]):.2f} apart "
                               f"along {side}: which is {rank}-th is ambiguous")
    return {chosen}


# A chain's objects, the referent first and the anchor (named alone) last, and the links between them: link k
# relates object k to object k + 1 ("The <referent> <relation> the <middle> that is <relation2> the <anchor>").
CHAIN_OBJECTS = ("referent", "middle", "middle2", "anchor")
CHAIN_LINKS = (("relation", "compared"), ("relation2", "compared2"), ("relation3",))


def meaning(tree: Node, scene: dict[str, Any], strict: bool = False) -> frozenset[int]:
    """The ids of the objects a parsed sentence names in a scene description. A chain: its anchor, then each
    object on the way as the one its description fits among what the link from the previous one keeps, then
    its referent's (or plural referents') description among what the last link keeps. "and": the two
    objects; "or": every object either description fits. Where `the` finds none or several objects on the
    way, the sentence names none; `strict` raises NamesNothingDefinite there instead (a stored sentence
    must never lean on such a description, not even a no-target one)."""
    family = tree.children[0]
    parts = {child.rule: child for child in family.children if isinstance(child, Node)}
    everything = {o["id"] for o in scene["objects"]}

    def definite(description: Node, pool: set[int]) -> dict[str, Any] | None:
        found = the_among(description, scene, pool)
        if found is None and strict:
            raise NamesNothingDefinite(f"{description.rule}: fits {len(described(description, scene, pool))} "
                                       "objects where the sentence needs one")
        return found

    if family.rule == "ordinal":  # "the second cube from the left"
        rank = int(parts["rank"].child_rule().removeprefix("rank_"))
        return frozenset(counted_from(scene, described(parts["referent"], scene, everything),
                                      SIDES[parts["side"].child_rule()], rank))
    if "first" in parts:  # "and" joins two definite objects, "or" two descriptions
        if family.rule == "conjunction":
            ones = [definite(parts[p], everything) for p in ("first", "second")]
            return frozenset() if None in ones else frozenset(o["id"] for o in ones)  # type: ignore[index]
        return frozenset(described(parts["first"], scene, everything) | described(parts["second"], scene, everything))
    objects = [parts[name] for name in CHAIN_OBJECTS[1:] if name in parts]
    links = [next(parts[n] for n in names if n in parts) for names in CHAIN_LINKS if any(n in parts for n in names)]
    referent = parts.get("referent", parts.get("referents"))
    pool = everything
    if objects:
        current = definite(objects[-1], everything)
        for k in range(len(links) - 1, -1, -1):
            if current is None:
                return frozenset()
            pool = linked(links[k], scene, current)
            if k > 0:
                current = definite(objects[k - 1], pool)
    return frozenset(described(referent, scene, pool))


def names(sentence: str, scene: dict[str, Any], strict: bool = False) -> frozenset[int]:
    """What `sentence` names in `scene` (a scene description as stored), by the published grammar."""
    return meaning(published_grammar().parse(sentence), scene, strict)
