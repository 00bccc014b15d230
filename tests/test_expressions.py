"""The expression engine: every kept sentence is a correct label for exactly one visible object."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clevr_remv.config import RenderConfig
from clevr_remv.expressions import (
    ProgramError,
    TemplateError,
    evaluate,
    execute,
    from_json,
    generate_pairs,
    generate_refs,
    language_templates,
    load_templates,
    relation_count,
)
from clevr_remv.expressions.pairs import PAIRS_PER_SCENE
from clevr_remv.expressions.programs import (
    FILTER_FUNCTIONS,
    FUNCTIONS,
    node,
    unique_inputs,
)
from clevr_remv.expressions.realise import finish
from clevr_remv.scene.description import SPLITS, Scene, SceneObject
from clevr_remv.scene.layout import draw_layout, relation_holds, scene_rng
from clevr_remv.scene.vocabulary import (
    ATTRIBUTES,
    COLORS,
    MATERIALS,
    MAX_OBJECTS,
    SHAPES,
    SIZES,
)
from clevr_remv.stats.language import expression_stats, format_stats, layout_stats

CONFIG = RenderConfig()
MIN_VISIBLE = CONFIG.min_visible_pixels
ALL_VISIBLE = np.full((CONFIG.views, MAX_OBJECTS), 10_000, dtype=np.int32)
TEMPLATES = language_templates()  # the published language: --max-hops 1 --targets one
LEXICON = TEMPLATES.lexicon
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@lru_cache(maxsize=None)
def layout(index: int, split: str = "train", seed: int = 0) -> Scene:
    return draw_layout(scene_rng(seed, split, index), RenderConfig(seed=seed), split, index)


def attribute_words() -> dict[str, tuple[str, str]]:
    """Every single-word phrasing of an attribute value -> (attribute, value)."""
    table = {}
    for attribute in ATTRIBUTES:
        for value, phrasings in LEXICON.words[attribute].items():
            for p in phrasings:
                table[p] = (attribute, value)
    return table


WORDS = attribute_words()


# ---------------------------------------------------------------- the checks every test relies on


def check_refs(scene: Scene, refs, visible_pixels: np.ndarray, min_visible: int = MIN_VISIBLE) -> None:
    """All the label-correctness properties of one scene's pairs."""
    assert [r.id for r in refs] == [scene.index * 1000 + k for k in range(len(refs))]
    assert len(refs) <= 8
    assert len({r.expression for r in refs}) == len(refs), "duplicate sentence"
    assert len({r.program for r in refs}) == len(refs), "duplicate program"
    centre = visible_pixels[scene.rig.centre_view]
    for r in refs:
        program = from_json(r.program)
        check_program(scene, program, r.object)
        check_text(scene, program, r.expression)
        assert r.family in {f.name for f in TEMPLATES.families}
        np.testing.assert_array_equal(r.visible, visible_pixels[:, r.object - 1] >= min_visible)
        assert r.visible.shape == (scene.rig.views,) and r.visible.dtype == bool
        for obj in mentioned(scene, program):
            assert centre[obj - 1] >= min_visible, "sentence names an object hidden in the centre view"


def check_program(scene: Scene, program, referent: int) -> None:
    """Exactly one answer, the referent; at most one relation; filters true of their objects."""
    assert evaluate(program, scene) == referent
    assert all(len(s) == 1 for s in unique_inputs(program, scene)), "some unique sees 0 or 2+ objects"
    assert unique_inputs(program, scene)[-1] == frozenset({referent})
    assert relation_count(program) <= 1
    assert {n["function"] for n in program} <= FUNCTIONS
    outputs = execute(program, scene)
    for i, n in enumerate(program):
        if n["function"] in FILTER_FUNCTIONS:
            described = next(outputs[j] for j in range(i, len(program)) if program[j]["function"] == "unique")
            attribute = FILTER_FUNCTIONS[n["function"]]
            assert getattr(scene.object(described), attribute) == n["value_inputs"][0]


def check_text(scene: Scene, program, text: str) -> None:
    """The sentence says exactly the attribute values the program filters on, and its relation."""
    assert "<" not in text and ">" not in text, text
    assert text[0].isupper() and text.endswith(".") and "  " not in text, text
    tokens = re.findall(r"[a-z]+", text.lower())
    said = Counter(WORDS[t] for t in tokens if t in WORDS)
    filtered = Counter(
        (FILTER_FUNCTIONS[n["function"]], n["value_inputs"][0]) for n in program if n["function"] in FILTER_FUNCTIONS
    )
    assert said == filtered, (text, program)
    objects = mentioned(scene, program)
    for attribute, value in said:
        assert any(getattr(scene.object(o), attribute) == value for o in objects), text
    for n in program:
        if n["function"] == "relate":
            assert any(p in text for p in LEXICON.words["relation"][n["value_inputs"][0]]), text
        if n["function"].startswith("same_"):
            assert any(p in text for p in LEXICON.words["attribute"][n["function"][5:]]), text


def mentioned(scene: Scene, program) -> list[int]:
    return [o for n, o in zip(program, execute(program, scene)) if n["function"] == "unique"]


# ---------------------------------------------------------------- properties on many scenes


@FAST
@given(index=st.integers(0, 100_000), split=st.sampled_from(SPLITS), seed=st.integers(0, 3))
def test_realistic_layouts_give_correct_labels(index: int, split: str, seed: int) -> None:
    scene = layout(index, split, seed)
    refs = generate_refs(scene, ALL_VISIBLE, MIN_VISIBLE)
    check_refs(scene, refs, ALL_VISIBLE)
    assert refs


def scene_objects():
    attributes = st.tuples(
        st.sampled_from(SHAPES),
        st.sampled_from(tuple(SIZES)),
        st.sampled_from(MATERIALS),
        st.sampled_from(tuple(COLORS)),
    )
    xy = st.tuples(st.floats(-3, 3), st.floats(-3, 3))
    return st.lists(st.tuples(attributes, xy), min_size=3, max_size=MAX_OBJECTS)


@st.composite
def built_scenes(draw):
    """Hand-built scenes: any attributes, any positions (no layout margins), any camera heading."""
    base = layout(draw(st.integers(0, 50)))
    objects = tuple(
        SceneObject(i + 1, shape, size, material, color, (x, y, SIZES[size]), 0.0)
        for i, ((shape, size, material, color), (x, y)) in enumerate(draw(scene_objects()))
    )
    angle = draw(st.floats(0, 2 * math.pi))
    a, b = math.cos(angle), math.sin(angle)
    directions = {"left": (a, b, 0.0), "right": (-a, -b, 0.0), "behind": (b, -a, 0.0), "front": (-b, a, 0.0)}
    return dataclasses.replace(base, objects=objects, directions=directions)


@FAST
@given(scene=built_scenes(), data=st.data())
def test_built_scenes_with_occlusion_give_correct_labels(scene: Scene, data) -> None:
    views, n = scene.rig.views, len(scene.objects)
    levels = st.sampled_from([0, MIN_VISIBLE - 1, MIN_VISIBLE, 5000])
    counts = data.draw(st.lists(levels, min_size=n * 3, max_size=n * 3))
    visible = np.full((views, MAX_OBJECTS), 5000, dtype=np.int32)
    visible[scene.rig.centre_view, :n] = counts[:n]
    visible[0, :n] = counts[n : 2 * n]  # a corner view too: refs/visible must follow it
    visible[views - 1, :n] = counts[2 * n :]
    result = generate_pairs(scene, visible, MIN_VISIBLE, TEMPLATES)
    check_refs(scene, result.refs, visible)
    hidden = {k + 1 for k in range(n) if visible[scene.rig.centre_view, k] < MIN_VISIBLE}
    assert not hidden & {r.object for r in result.refs}
    assert result.dropped_referent <= len(hidden)


def test_hidden_referent_is_dropped_and_counted() -> None:
    scene = next(s for s in (layout(i) for i in range(100)) if 5 <= len(s.objects) <= 8)
    plain = generate_pairs(scene, ALL_VISIBLE, MIN_VISIBLE, TEMPLATES)
    assert {r.object for r in plain.refs} == {o.id for o in scene.objects}  # every object gets a turn
    hidden = plain.refs[0].object
    visible = ALL_VISIBLE.copy()
    visible[scene.rig.centre_view, hidden - 1] = 0
    visible[3, plain.refs[1].object - 1] = 0  # hidden in another view only: still usable
    result = generate_pairs(scene, visible, MIN_VISIBLE, TEMPLATES)
    assert hidden not in {r.object for r in result.refs}
    assert result.dropped_referent == 1
    assert len(result.refs) == len(plain.refs)  # replaced from the other objects
    check_refs(scene, result.refs, visible)
    assert any(not r.visible[3] for r in result.refs if r.object == plain.refs[1].object)


def test_nothing_visible_gives_no_pairs() -> None:
    scene = layout(3)
    result = generate_pairs(scene, np.zeros_like(ALL_VISIBLE), MIN_VISIBLE, TEMPLATES)
    # Each object is dropped on its turn, unless nothing singles it out any more (a twin, or
    # every anchor of its relational sentences already known hidden): never more than one each.
    assert result.refs == [] and 0 < result.dropped_referent <= len(scene.objects)


def test_visible_pixels_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="visible_pixels"):
        generate_refs(layout(0), np.ones((9, 10), dtype=int), MIN_VISIBLE)


# ---------------------------------------------------------------- coverage and balance


@pytest.fixture(scope="module")
def many_refs() -> list[tuple[Scene, list]]:
    return [(layout(i), generate_refs(layout(i), ALL_VISIBLE, MIN_VISIBLE)) for i in range(80)]


def test_every_family_relation_and_synonym_is_used(many_refs) -> None:
    refs = [r for _, rs in many_refs for r in rs]
    assert {r.family for r in refs} == {f.name for f in TEMPLATES.families}
    functions = Counter(n["function"] for r in refs for n in from_json(r.program))
    relations = Counter(n["value_inputs"][0] for r in refs for n in from_json(r.program) if n["function"] == "relate")
    assert set(relations) == {"left", "right", "front", "behind"}
    assert {f"same_{a}" for a in ATTRIBUTES} <= set(functions)
    text = " ".join(r.expression.lower() for r in refs)
    for word in ["big", "large", "tiny", "small", "ball", "sphere", "block", "cube", "shiny", "metal", "matte",
                 "rubber", "thing", "object", "to the left of", "on the right side of", "in front of", "behind"]:
        assert re.search(rf"\b{word}\b", text), word


def test_balance_and_determinism(many_refs) -> None:
    spread = [len({r.object for r in refs}) == min(len(scene.objects), len(refs)) for scene, refs in many_refs]
    assert np.mean(spread) >= 0.9  # every object gets a pair before any gets two
    for scene, refs in many_refs[:20]:
        again = generate_refs(scene, ALL_VISIBLE, MIN_VISIBLE)
        assert [(r.expression, r.program, r.id) for r in again] == [(r.expression, r.program, r.id) for r in refs]
        redrawn = dataclasses.replace(scene, attempt=scene.attempt + 5)  # layout retries do not matter
        assert [r.expression for r in generate_refs(redrawn, ALL_VISIBLE, MIN_VISIBLE)] == [r.expression for r in refs]
    assert generate_refs(layout(0, seed=1), ALL_VISIBLE, MIN_VISIBLE) != many_refs[0][1]


def test_stats_match_published_figures(capsys) -> None:
    stats = layout_stats(300)
    print(format_stats(stats))
    # Every object visible: each scene gets its full PAIRS_PER_SCENE (8, the published 7-8 rounded up), never more.
    assert stats["min_pairs"] == stats["max_pairs"] == PAIRS_PER_SCENE == 8 and stats["pairs"] == 8 * 300
    assert abs(stats["words_per_sentence"] - 8.0) <= 0.8
    assert stats["dropped"] == 0 and stats["scenes"] == 300
    assert all(share > 0.15 for share in stats["family_share"].values())


def test_expression_stats_counts_drops() -> None:
    scene = next(s for s in (layout(i) for i in range(100)) if len(s.objects) <= 8)  # every object gets a turn
    visible = ALL_VISIBLE.copy()
    visible[scene.rig.centre_view, 0] = 0
    result = generate_pairs(scene, visible, MIN_VISIBLE, TEMPLATES)
    other = generate_refs(layout(6), ALL_VISIBLE, MIN_VISIBLE)
    stats = expression_stats([(scene, result), (layout(6), other)])
    assert stats["dropped"] == result.dropped >= 1
    assert stats["pairs"] == len(result.refs) + len(other)
    assert math.isclose(stats["drop_rate"], result.dropped / (stats["pairs"] + result.dropped))


# ---------------------------------------------------------------- the evaluator on a hand-made scene


def tiny_scene() -> Scene:
    """Three objects along the camera's left axis: A (left), B (middle), C (right, also in front)."""
    base = layout(0)
    left = np.asarray(base.directions["left"][:2])
    front = np.asarray(base.directions["front"][:2])
    at = lambda v: (float(v[0]), float(v[1]), 0.35)  # noqa: E731
    objects = (
        SceneObject(1, "cube", "small", "metal", "red", at(2 * left), 0.0),
        SceneObject(2, "sphere", "small", "rubber", "red", at(0 * left), 0.0),
        SceneObject(3, "cube", "large", "rubber", "blue", at(-2 * left + front), 0.0),
    )
    return dataclasses.replace(base, objects=objects)


def program(*nodes):
    return [node(f, [i - 1] if i else [], v) for i, (f, *v) in enumerate(nodes)]


def test_evaluator_semantics() -> None:
    scene = tiny_scene()
    red_sphere = [("scene",), ("filter_color", "red"), ("filter_shape", "sphere"), ("unique",)]
    assert evaluate(program(*red_sphere), scene) == 2
    assert evaluate(program(*red_sphere, ("relate", "left"), ("unique",)), scene) == 1
    assert evaluate(program(*red_sphere, ("relate", "right"), ("unique",)), scene) == 3
    assert evaluate(program(*red_sphere, ("relate", "front"), ("unique",)), scene) == 3
    assert evaluate(program(*red_sphere, ("relate", "behind"), ("unique",)), scene) is None  # nothing behind
    assert evaluate(program(*red_sphere, ("same_color",), ("unique",)), scene) == 1  # itself excluded
    assert evaluate(program(*red_sphere, ("same_size",), ("unique",)), scene) == 1
    assert evaluate(program(("scene",), ("filter_shape", "cube"), ("unique",)), scene) is None  # two cubes
    assert relation_holds(scene.object(1), scene.object(2), scene.directions["left"])
    with pytest.raises(ProgramError):
        evaluate(program(("scene",), ("relate", "left")), scene)  # relate needs one object
    with pytest.raises(ProgramError):
        evaluate(program(("scene",), ("count",)), scene)
    with pytest.raises(ProgramError):
        evaluate(program(*red_sphere, ("relate", "above")), scene)


def test_finish_tidies_sentences() -> None:
    assert finish("  the   red  cube  ") == "The red cube."
    assert finish("find the  thing .") == "Find the thing."


# ---------------------------------------------------------------- templates as data


@pytest.fixture
def template_copy(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES.root, target)
    return target


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def plural_before_unique(family: dict) -> None:
    """A plural shape in a description that `unique` then takes: "the cubes" naming one object."""
    family["program"][1]["value_inputs"][3] = "<P>"
    family["texts"] = [t.replace("<S>", "<P>") for t in family["texts"]]


def four_hops(family: dict) -> None:
    """Three more relations chained onto a one-hop family: four in all, one more than --max-hops allows."""
    for n in (5, 6, 7):
        family["program"][-3:-3] = [{"function": "unique"}, {"function": "relate", "value_inputs": [f"<R{n}>"]},
                                    {"function": "filter", "value_inputs": [f"<{k}{n}>" for k in "ZCMS"]}]


@pytest.mark.parametrize(
    "file, change, message",
    [
        ("zero_hop.json", lambda d: d.pop("texts"), "missing key 'texts'"),
        ("zero_hop.json", lambda d: d["texts"].append("The <Z> <C> <M> <X>."), "placeholder <X>"),
        ("zero_hop.json", lambda d: d["texts"].append("The <C> <M> <S>."), "<Z> must appear exactly once"),
        ("zero_hop.json", lambda d: d["program"].insert(1, {"function": "count"}), "unknown function 'count'"),
        ("one_hop_spatial.json", four_hops, "at most 3 hops"),
        ("one_hop_spatial.json", lambda d: d.update(targets="many"), "targets must be one of one, several, none"),
        ("one_hop_spatial.json", lambda d: d.update(targets="several"), "with targets 'several' must be"),
        ("zero_hop.json", plural_before_unique, "<P> (a plural shape) only"),
        ("lexicon.json", lambda d: d.pop("plural_shape"), "uses <P> (plural shapes) but"),
        ("one_hop_same.json", lambda d: d["constraints"].append({"type": "NULL", "params": ["<Q>"]}), "<Q>"),
        ("one_hop_same.json", lambda d: d.update(weight=-1), "weight"),
        ("lexicon.json", lambda d: d["words"]["color"].pop("cyan"), "words.color.cyan"),
        ("lexicon.json", lambda d: d["words"]["shape"].update(cone=["cone"]), "unknown values ['cone']"),
    ],
)
def test_bad_templates_raise_clear_errors(template_copy: Path, file: str, change, message: str) -> None:
    edit(template_copy / file, change)
    with pytest.raises(TemplateError, match=re.escape(message)) as error:
        load_templates(template_copy)
    assert isinstance(error.value, ValueError) and file in str(error.value)


def test_invalid_json_names_the_file(template_copy: Path) -> None:
    (template_copy / "zero_hop.json").write_text('{"family": "zero_hop",')
    with pytest.raises(TemplateError, match="zero_hop.json: not valid JSON"):
        load_templates(template_copy)


def test_a_new_family_needs_no_code(template_copy: Path) -> None:
    family = json.loads((template_copy / "zero_hop.json").read_text())
    family.update(family="zero_hop_polite", weight=5, texts=["Please find the <Z> <C> <M> <S> for me."])
    (template_copy / "zero_hop_polite.json").write_text(json.dumps(family))
    templates = load_templates(template_copy)
    scene = layout(1)
    refs = generate_refs(scene, ALL_VISIBLE, MIN_VISIBLE, templates)
    polite = [r for r in refs if r.family == "zero_hop_polite"]
    assert polite and all(r.expression.startswith("Please find the ") for r in polite)
    for r in polite:
        check_program(scene, from_json(r.program), r.object)
