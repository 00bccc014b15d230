"""The language options (`--max-hops`, `--targets`): the published language unchanged to the byte, and
every sentence of the harder one naming exactly its targets, read independently by the published grammar."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sentence_grammar import NamesNothingDefinite, NotASentence, meaning, names, published_grammar
from test_expressions import ALL_VISIBLE, FAST, MIN_VISIBLE, built_scenes, layout

from clevr_remv.config import RenderConfig
from clevr_remv.expressions import generate_pairs, generate_refs, language_templates
from clevr_remv.expressions.programs import execute, from_json, mentioned_objects, relation_count, targets
from clevr_remv.expressions.search import relation_ambiguous
from clevr_remv.expressions.templates import TemplateError, TemplateSet, load_templates, select_families
from clevr_remv.scene.vocabulary import MAX_OBJECTS

CONFIG = RenderConfig()
EVERYTHING = language_templates(None, 3, "any", ordinals=True)
FAMILIES = tuple(f.name for f in EVERYTHING.families)
# The grammar rule a family's sentences parse as: a no-target family says the words of a targeted one.
RULE = {"no_target": "zero_hop", "no_target_spatial": "one_hop_spatial"}


def published_digest(scenes: int = 100) -> tuple[int, str]:
    """SHA-256 over every pair (id, referent, sentence, family, program, visibility) and the dropped counts
    of `scenes` layouts per split, with every object visible and with a random visibility pattern."""
    digest, pairs = hashlib.sha256(), 0
    templates = language_templates()
    for split in ("train", "val", "test"):
        for i in range(scenes):
            scene = layout(i, split)
            hidden = np.random.default_rng([i, len(split)]).integers(
                0, 3 * CONFIG.min_visible_pixels, (CONFIG.views, MAX_OBJECTS))
            for pixels in (np.full((CONFIG.views, MAX_OBJECTS), 10_000), hidden):
                result = generate_pairs(scene, pixels, CONFIG.min_visible_pixels, templates)
                for ref in result.refs:
                    digest.update(json.dumps([ref.id, ref.object, ref.expression, ref.family, ref.program,
                                              ref.visible.tolist()]).encode())
                    pairs += 1
                digest.update(json.dumps([result.dropped_referent, result.dropped_related]).encode())
    return pairs, digest.hexdigest()


def test_the_published_language_is_unchanged_to_the_byte() -> None:
    """Recorded before the options existed (commit 43cf5fe): 600 layouts x 2 visibility patterns."""
    assert published_digest() == (4702, "7ca28473b32ed747897ec59c89cf992ad3fde865f0900231044ce4c76157a1db")


def test_the_default_options_select_the_published_families() -> None:
    assert [f.name for f in language_templates().families] == ["one_hop_same", "one_hop_spatial", "zero_hop"]
    assert language_templates().mix == "deficit"
    two = {f.name for f in language_templates(None, 2, "one").families}
    assert two == {"one_hop_same", "one_hop_spatial", "zero_hop", "two_hop_spatial", "two_hop_same"}
    several = {f.name for f in language_templates(None, 1, "any").families}
    assert "three_hop_spatial" not in several and {"plural", "conjunction", "no_target"} <= several
    assert "ordinal" not in several | two
    assert [f.name for f in language_templates(None, 1, "one", ordinals=True).families] == [
        "one_hop_same", "one_hop_spatial", "ordinal", "zero_hop"]
    assert language_templates(None, 1, "one", ordinals=True).mix == "weighted"
    with pytest.raises(ValueError, match="--max-hops must be 0..3, got 4"):
        select_families(load_templates(), 4, "one")
    with pytest.raises(ValueError, match="--targets must be one or any"):
        select_families(load_templates(), 1, "several")
    with pytest.raises(TemplateError, match="no template family fits --max-hops 0 --targets one"):
        select_families(TemplateSet(language_templates().families[:2], EVERYTHING.lexicon, EVERYTHING.root), 0, "one")


@pytest.mark.parametrize("hops, kind", [(2, "one"), (3, "any")])
def test_the_options_are_deterministic_per_seed(hops: int, kind: str) -> None:
    def sentences(seed: int) -> list:
        return [(r.expression, r.targets) for i in range(12)
                for r in generate_refs(layout(i, "val", seed), ALL_VISIBLE, MIN_VISIBLE, None, hops, kind)]

    assert sentences(0) == sentences(0)
    assert sentences(0) != sentences(1)
    assert sentences(0) != [(r.expression, r.targets) for i in range(12)
                            for r in generate_refs(layout(i, "val", 0), ALL_VISIBLE, MIN_VISIBLE)]


def check_pair(scene, ref, visible: np.ndarray) -> None:
    """What the engine promises of every kept pair, checked with the evaluator and the scene's geometry."""
    program = from_json(ref.program)
    family = EVERYTHING.family(ref.family)
    named = targets(program, scene)
    assert named == frozenset(ref.targets), (ref.expression, sorted(named or ()), ref.targets)
    assert relation_count(program) == family.hops
    assert {"one": len(named) == 1, "several": len(named) >= 2, "none": not named}[family.targets]
    assert ref.object == (ref.targets[0] if len(ref.targets) == 1 else 0)
    # Every object named on the way is one definite object, a different one each, never in a dead band.
    on_the_way = mentioned_objects(program, scene)
    assert None not in on_the_way and len(set(on_the_way)) == len(on_the_way)
    for n, node in enumerate(program):
        if node["function"] == "relate":
            anchor = targets(program[:n], scene)
            assert len(anchor) == 1 and not relation_ambiguous(scene, next(iter(anchor)), node["value_inputs"][0])
    centre = visible[scene.rig.centre_view] >= MIN_VISIBLE
    anchors = [o for o in on_the_way if o not in ref.targets] if not family.joined else []
    if family.ordinal:  # every object its rank counts is one the viewer sees
        anchors = sorted(execute(program, scene)[-2])
    assert all(centre[t - 1] for t in (*ref.targets, *anchors)), "a target or related object is hidden"
    expected = (visible[:, [t - 1 for t in ref.targets]] >= MIN_VISIBLE).all(axis=1)
    assert np.array_equal(ref.visible, expected)


def test_every_family_is_said_and_every_sentence_checks_out() -> None:
    seen = Counter()
    for i in range(150):
        scene = layout(i, "train")
        for ref in generate_refs(scene, ALL_VISIBLE, MIN_VISIBLE, None, 3, "any", ordinals=True):
            check_pair(scene, ref, ALL_VISIBLE)
            seen[ref.family] += 1
    assert set(seen) == set(FAMILIES), seen


@FAST
@given(scene=built_scenes(), data=st.data())
def test_hidden_objects_are_never_targets_or_anchors(scene, data) -> None:
    """Hand-built scenes (any attributes, positions, camera), some objects hidden in the central view."""
    visible = ALL_VISIBLE.copy()
    visible[scene.rig.centre_view, :len(scene.objects)] = data.draw(
        st.lists(st.sampled_from([0, 10_000]), min_size=len(scene.objects), max_size=len(scene.objects)))
    visible[data.draw(st.integers(0, CONFIG.views - 1)), 0] = 0  # a target may hide in another view
    described = json.loads(scene.to_json())
    for ref in generate_pairs(scene, visible, MIN_VISIBLE, EVERYTHING).refs:
        check_pair(scene, ref, visible)
        assert names(ref.expression, described, strict=True) == set(ref.targets)


def test_a_hidden_object_is_dropped_once_at_most() -> None:
    """One object hidden in the central view: it is never a target or counted by an ordinal, and the pairs it
    costs are at most one as a target (its own turn, or another sentence's target set, not both)."""
    for i in range(120):
        scene = layout(i, "val")
        visible = ALL_VISIBLE.copy()
        visible[scene.rig.centre_view, i % len(scene.objects)] = 0
        result = generate_pairs(scene, visible, MIN_VISIBLE, EVERYTHING)
        assert result.dropped_referent <= 1, (i, result.dropped_referent)
        for ref in result.refs:
            check_pair(scene, ref, visible)


def test_a_no_target_sentence_reads_like_a_targeted_one() -> None:
    """Its description is a real object's with one value changed: as long as the targeted family's, and
    its words are the vocabulary's; only the scene tells that nothing fits."""
    lengths: dict[str, list[int]] = {"no_target": [], "zero_hop": []}
    for i in range(150):
        scene = layout(i, "test")
        for ref in generate_refs(scene, ALL_VISIBLE, MIN_VISIBLE, None, 1, "any"):
            if ref.family in lengths:
                lengths[ref.family].append(sum(n["function"].startswith("filter_") for n in from_json(ref.program)))
            if ref.family == "no_target":
                said = {n["function"].removeprefix("filter_"): n["value_inputs"][0]
                        for n in from_json(ref.program) if n["function"].startswith("filter_")}
                near = [o for o in scene.objects if sum(getattr(o, a) != v for a, v in said.items()) == 1]
                assert near, (ref.expression, said)  # an object the description misses by one value
    assert len(lengths["no_target"]) > 40
    assert abs(np.mean(lengths["no_target"]) - np.mean(lengths["zero_hop"])) < 0.5, lengths


@lru_cache(maxsize=None)
def family_alone(name: str) -> TemplateSet:
    return TemplateSet((EVERYTHING.family(name),), EVERYTHING.lexicon, EVERYTHING.root, "weighted")


@pytest.mark.exhaustive
@pytest.mark.parametrize("family", FAMILIES)
def test_ten_thousand_sentences_of_every_family_name_their_targets_by_the_grammar(family: str) -> None:
    """Issue #24's check: each family alone over as many layouts as 10,000 of its sentences take, every one
    parsed (once) by the published grammar and read on the stored scene description: 0 wrong target sets."""
    grammar, wrong, count, index = published_grammar(), [], 0, 0
    while count < 10_000:
        scene = layout(index, "train")
        index += 1
        described = json.loads(scene.to_json())
        for ref in generate_pairs(scene, ALL_VISIBLE, MIN_VISIBLE, family_alone(family)).refs:
            tree = grammar.parse(ref.expression)
            assert tree.children[0].rule == RULE.get(family, family), ref.expression
            if meaning(tree, described, strict=True) != set(ref.targets):
                wrong.append((ref.expression, ref.targets))
            count += 1
    assert wrong == []


SCENE = {"directions": {"left": [-1, 0, 0], "right": [1, 0, 0], "front": [0, -1, 0], "behind": [0, 1, 0]},
         "objects": [{"id": 1, "shape": "cube", "size": "large", "material": "metal", "color": "red",
                      "position": [0.0, 0.0, 0.7]},
                     {"id": 2, "shape": "cube", "size": "small", "material": "rubber", "color": "blue",
                      "position": [2.0, -1.0, 0.35]},
                     {"id": 3, "shape": "sphere", "size": "small", "material": "metal", "color": "red",
                      "position": [-2.0, 1.0, 0.35]},
                     {"id": 4, "shape": "cylinder", "size": "large", "material": "rubber", "color": "green",
                      "position": [1.0, 2.0, 0.7]}]}


@pytest.mark.parametrize("sentence, named", [
    ("The cubes.", {1, 2}), ("All the red things.", {1, 3}), ("Find all small objects.", {2, 3}),
    ("All things right of the ball.", {1, 2, 4}), ("The cubes left of the cylinder.", {1}),  # the set's reading
    ("The red cube and the blue thing.", {1, 2}), ("Show me the sphere together with the cylinder.", {3, 4}),
    ("Every object that is a cube or a green thing.", {1, 2, 4}), ("Anything that is an object or a ball.", {1, 2, 3, 4}),
    ("The green cube.", set()), ("The sphere right of the cylinder.", set()),
    ("The cube left of the cylinder that is behind the small cube.", {1}),
    ("The cube right of the ball that is left of the red cube.", {1, 2}),  # the set the referent fits
    ("Find the thing left of the cylinder with the same material as the blue cube.", {1, 3}),
    ("The small thing right of the cube that is left of the cylinder that is behind the ball.", {2}),
    ("The first cube from the left.", {1}), ("Find the second thing from the front.", {1}),
    ("Show me the third object counting from the right.", {1}), ("The second red thing from the back.", {1}),
    ("The third sphere from the left.", set()),  # one sphere: no third
])
def test_the_reading_of_hand_made_sentences(sentence: str, named: set[int]) -> None:
    assert names(sentence, SCENE) == named


def test_an_ordinal_in_the_dead_band_is_unreadable() -> None:
    near = json.loads(json.dumps(SCENE))
    near["objects"][0]["position"][0] = 1.9  # 0.1 left of the small cube: which cube is first from the right?
    with pytest.raises(NotASentence, match="ambiguous"):
        names("The first cube from the right.", near)


@pytest.mark.parametrize("sentence", ["The thing left of the cube that is in front of the cylinder.",  # two cubes
                                      "The cube and the ball.", "The red thing and the cylinder."])
def test_a_definite_description_that_fits_several_names_nothing(sentence: str) -> None:
    assert names(sentence, SCENE) == set()
    with pytest.raises(NamesNothingDefinite, match="where the sentence needs one"):
        names(sentence, SCENE, strict=True)


def test_every_template_text_of_every_family_is_a_sentence_of_its_family() -> None:
    """Each phrasing of every family file, its placeholders filled, parses as its family; every word of the
    lexicon (plurals, ordinals and sides included) is a word of the published grammar."""
    grammar = published_grammar()
    text = (Path(__file__).resolve().parents[1] / "docs" / "expressions.md").read_text(encoding="utf-8")
    lexicon = EVERYTHING.lexicon
    phrasings = [w for kind in lexicon.words.values() for ws in kind.values() for w in ws]
    phrasings += [w for ws in lexicon.plural.values() for w in ws] + list(lexicon.unnamed_plural)
    assert all(f'"{w}"' in text for w in phrasings), [w for w in phrasings if f'"{w}"' not in text]
    fill = {"Z": "big", "C": "red", "M": "shiny", "S": "ball", "P": "balls", "R": "on the left side of",
            "A": "colour", "O": "second", "D": "from the back"}
    for family in EVERYTHING.families:
        for template in family.texts:
            sentence = re.sub(r"<([A-Z])\d*>", lambda m: fill[m.group(1)], template)
            sentence = re.sub(r"\ba (?=[aeiou])", "an ", sentence)
            assert grammar.parse(sentence).children[0].rule == RULE.get(family.name, family.name), template


def test_the_language_options_are_settings_of_the_dataset() -> None:
    """Stored only where they differ from the published language (so a 0.3.0 manifest still compares equal),
    given back as render options, refused with the option's name when out of range."""
    from clevr_remv.config import RenderConfig, from_dict, render_arguments

    published = RenderConfig()
    assert {"max_hops", "targets", "ordinals"}.isdisjoint(published.identity())
    harder = RenderConfig(max_hops=2, targets="any", ordinals=True)
    assert {k: harder.identity()[k] for k in ("max_hops", "targets", "ordinals")} == {
        "max_hops": 2, "targets": "any", "ordinals": True}
    assert from_dict(harder.identity()) == harder.with_(device="auto")
    arguments = render_arguments(harder)
    assert " ".join(arguments).endswith("--max-hops 2 --targets any --ordinals")
    assert "--max-hops" not in render_arguments(published)
    with pytest.raises(ValueError, match="--max-hops must be 1, 2 or 3, got 4"):
        RenderConfig(max_hops=4)
    with pytest.raises(ValueError, match="--targets must be one or any, got two"):
        RenderConfig(targets="two")


@pytest.mark.parametrize("option", [["--max-hops", "4"], ["--targets", "several"]])
def test_a_bad_language_option_is_a_usage_error(option: list[str], tmp_path) -> None:
    from conftest import run_cli

    for command in (["render", "--out", str(tmp_path / "out")], ["expressions", str(tmp_path)]):
        result = run_cli(*command, *option)
        assert result.exit_code == 2 and option[0] in result.output, result.output


def test_a_dataset_rewritten_in_the_harder_language_verifies_and_records_it(harder_dataset: Path) -> None:
    """`expressions --max-hops 3 --targets any` stored the settings in dataset.json and every shard, so verify
    finds the dataset whole and a later `render` into it is checked against the harder language."""
    import h5py
    from conftest import HARDER_ARGS, run_cli

    assert HARDER_ARGS == ["--max-hops", "3", "--targets", "any"]
    config = json.loads((harder_dataset / "dataset.json").read_text())["config"]
    assert (config["max_hops"], config["targets"]) == (3, "any") and "ordinals" not in config
    for path in sorted(harder_dataset.glob("*/shard-*.h5")):
        with h5py.File(path) as f:
            assert json.loads(f.attrs["config"]) == config and f.attrs["schema_version"] == 4
    result = run_cli("verify", str(harder_dataset))
    assert result.exit_code == 0, result.output
