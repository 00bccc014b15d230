"""The sentences read independently (tests/sentence_grammar.py: the grammar docs/expressions.md publishes,
interpreted on the stored scene description): every sentence parses, once, and names exactly its referent;
the project's evaluator agrees with that reading on descriptions that fit one object, several or none."""

from __future__ import annotations

import json
import random
from pathlib import Path

import h5py
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sentence_grammar import NotASentence, grammar_text, names, parse_grammar, published_grammar
from test_expressions import ALL_VISIBLE, FAST, MIN_VISIBLE, TEMPLATES, built_scenes, layout

from clevr_remv.expressions import evaluate, generate_pairs, generate_refs

ROOT = Path(__file__).resolve().parents[1]
LEXICON = json.loads((ROOT / "templates" / "lexicon.json").read_text(encoding="utf-8"))["words"]
GENERATED = [(split, seed, index) for split in ("train", "val", "test") for seed in (0, 1) for index in range(40)]


def scene_json(scene) -> dict:
    """The scene description as a shard stores it."""
    return json.loads(scene.to_json())


def assert_names_its_referent(sentence: str, referent: int, scene: dict) -> None:
    assert names(sentence, scene) == {referent}, (sentence, referent, scene["objects"])


@pytest.mark.parametrize("fixture", ["tiny_dataset", "lightfield_dataset"])
def test_every_stored_sentence_names_exactly_its_referent(fixture: str, request: pytest.FixtureRequest) -> None:
    dataset: Path = request.getfixturevalue(fixture)
    checked = 0
    for path in sorted(dataset.glob("*/shard-*.h5")):
        with h5py.File(path, "r") as f:
            scenes = [json.loads(s) for s in f["scenes"].asstr()[()]]
            for row, referent, sentence in zip(f["refs/scene"][()], f["refs/object"][()],
                                               f["refs/expression"].asstr()[()]):
                assert_names_its_referent(sentence, int(referent), scenes[row])
                checked += 1
    assert checked >= 24


def test_the_sentences_of_many_layouts_name_exactly_their_referents() -> None:
    """240 layouts of every split, every object visible: about 1,900 sentences, every family."""
    families = set()
    for split, seed, index in GENERATED:
        scene = layout(index, split, seed)
        described = scene_json(scene)
        for ref in generate_refs(scene, ALL_VISIBLE, MIN_VISIBLE):
            assert_names_its_referent(ref.expression, ref.object, described)
            families.add(published_grammar().parse(ref.expression).children[0].rule)
    assert families == {"zero_hop", "one_hop_spatial", "one_hop_same"}


@FAST
@given(scene=built_scenes(), data=st.data())
def test_hand_built_scenes_name_exactly_their_referents(scene, data) -> None:
    """Any attributes, any positions and camera heading, some objects hidden (test_expressions' scenes)."""
    visible = ALL_VISIBLE.copy()
    visible[scene.rig.centre_view, :len(scene.objects)] = data.draw(
        st.lists(st.sampled_from([0, 10_000]), min_size=len(scene.objects), max_size=len(scene.objects)))
    described = scene_json(scene)
    for ref in generate_pairs(scene, visible, MIN_VISIBLE, TEMPLATES).refs:
        assert_names_its_referent(ref.expression, ref.object, described)


# ---------------------------------------------------------------------------- the evaluator against this reading


def phrase(rng: random.Random, kind: str, value: str) -> str:
    return rng.choice(LEXICON[kind][value])


def description(rng: random.Random, target: dict, start: int) -> tuple[str, list[dict]]:
    """Words for a random subset of `target`'s attributes, and the filter nodes saying the same (CLEVR's
    program format, docs/expressions.md), their first input node `start - 1`."""
    said = [a for a in ("size", "color", "material", "shape") if rng.random() < 0.5]
    words = [phrase(rng, a, target[a]) for a in said if a != "shape"]
    words.append(phrase(rng, "shape", target["shape"]) if "shape" in said else rng.choice(["thing", "object"]))
    nodes = [{"function": f"filter_{a}", "inputs": [start + i - 1], "value_inputs": [target[a]]}
             for i, a in enumerate(said)]
    return " ".join(words), nodes


def random_pair(rng: random.Random, scene: dict, family: str) -> tuple[str, list[dict]]:
    """A sentence of `family` and its program, about objects of the scene, naming one, several or none."""
    referent, anchor = rng.sample(scene["objects"], 2)
    program: list[dict] = [{"function": "scene", "inputs": [], "value_inputs": []}]
    if family == "zero_hop":
        words, filters = description(rng, referent, 1)
        return f"The {words}.", program + filters + [{"function": "unique", "inputs": [len(filters)],
                                                      "value_inputs": []}]
    anchor_words, filters = description(rng, anchor, 1)
    program += filters + [{"function": "unique", "inputs": [len(filters)], "value_inputs": []}]
    if family == "one_hop_spatial":
        relation = rng.choice(["left", "right", "front", "behind"])
        link = {"function": "relate", "inputs": [len(program) - 1], "value_inputs": [relation]}
        middle = phrase(rng, "relation", relation)
    else:
        attribute = rng.choice(["size", "color", "material", "shape"])
        link = {"function": f"same_{attribute}", "inputs": [len(program) - 1], "value_inputs": []}
        middle = f"that has the same {phrase(rng, 'attribute', attribute)} as"
    program.append(link)
    words, filters = description(rng, referent, len(program))
    program += filters + [{"function": "unique", "inputs": [len(program) + len(filters) - 1], "value_inputs": []}]
    return f"The {words} {middle} the {anchor_words}.", program


@pytest.mark.parametrize("family", ["zero_hop", "one_hop_spatial", "one_hop_same"])
def test_the_evaluator_agrees_with_this_reading_on_any_description(family: str) -> None:
    """Random descriptions (not only the unique ones the generator keeps) of 120 layouts: the evaluator's
    answer is the one object the sentence names, or none where it names none or several."""
    rng = random.Random(27)
    outcomes = set()
    for split, seed, index in GENERATED[::2]:
        scene = layout(index, split, seed)
        described = scene_json(scene)
        for _ in range(6):
            sentence, program = random_pair(rng, described, family)
            named = names(sentence, described)
            expected = next(iter(named)) if len(named) == 1 else None
            assert evaluate(program, scene) == expected, (sentence, program, sorted(named))
            outcomes.add(min(len(named), 2))
    assert outcomes == {0, 1, 2} if family != "zero_hop" else outcomes == {1, 2}  # every case was met


# ---------------------------------------------------------------------------- the reading itself


SCENE = {"directions": {"left": [-1, 0, 0], "right": [1, 0, 0], "front": [0, -1, 0], "behind": [0, 1, 0]},
         "objects": [{"id": 1, "shape": "cube", "size": "large", "material": "metal", "color": "red",
                      "position": [0.0, 0.0, 0.7]},
                     {"id": 2, "shape": "cube", "size": "small", "material": "rubber", "color": "blue",
                      "position": [2.0, 0.0, 0.35]},
                     {"id": 3, "shape": "sphere", "size": "small", "material": "metal", "color": "red",
                      "position": [-2.0, 1.0, 0.35]}]}


@pytest.mark.parametrize("sentence, named", [
    ("The red cube.", {1}), ("The cube.", {1, 2}), ("Find the big block.", {1}), ("The green thing.", set()),
    ("Look at the shiny object in front of the sphere.", {1}), ("The thing to the right of the large cube.", {2}),
    ("The thing left of the cube.", set()),  # two cubes: "the cube" names none
    ("The object that has the same colour as the big cube.", {3}),  # the anchor itself never counts
    ("The thing sharing its size with the blue cube.", {3}), ("Find the cube that matches the ball in material.", {1}),
    ("Segment the small rubber block in the picture.", {2}), ("Point to the ball in the scene.", {3}),
])
def test_the_reading_of_hand_made_sentences(sentence: str, named: set[int]) -> None:
    assert names(sentence, SCENE) == named


@pytest.mark.parametrize("text", ["The red.", "The red cube", "Red cube.", "The cube behind the ball left of the cube.",
                                  "The cube that is in front of the ball in the image.", "The blue red cube.",
                                  "The metal large cube.", "The cube in the image", "The huge cube.", "The cube!"])
def test_what_is_not_a_sentence_of_the_language(text: str) -> None:
    with pytest.raises(NotASentence, match="0 parses by the published grammar"):
        published_grammar().parse(text)


def test_a_relation_in_the_dead_band_is_unreadable() -> None:
    near = json.loads(json.dumps(SCENE))
    near["objects"][1]["position"][0] = 0.1  # 0.1 right of the large cube: neither side by CLEVR's rule
    with pytest.raises(NotASentence, match="ambiguous"):
        names("The blue thing right of the large cube.", near)


def test_the_published_grammar_covers_every_template_phrasing_and_lexicon_word() -> None:
    """Each template text of templates/ with its placeholders filled parses; every phrasing of the
    lexicon is a word of the grammar (a new synonym or template needs its place in the published grammar)."""
    rules = parse_grammar(grammar_text())
    text = grammar_text()
    for kind, values in LEXICON.items():
        for phrasings in values.values():
            for words in phrasings:
                assert f'"{words}"' in text, (kind, words)
    assert {"sentence", "referent", "anchor", "description", "relation", "compared"} <= set(rules)
    fill = {"<Z>": "big", "<C>": "red", "<M>": "shiny", "<S>": "ball", "<Z2>": "small", "<C2>": "blue",
            "<M2>": "matte", "<S2>": "cube", "<R>": "on the left side of", "<A>": "colour"}
    for family in ("zero_hop", "one_hop_spatial", "one_hop_same"):
        texts = json.loads((ROOT / "templates" / f"{family}.json").read_text(encoding="utf-8"))["texts"]
        for template in texts:
            sentence = template
            for placeholder, word in fill.items():
                sentence = sentence.replace(placeholder, word)
            assert published_grammar().parse(sentence).children[0].rule == family, template
