"""`clevr-remv show`: the scene picture, the viewer page's escaping, and errors a user can make."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as MplPath
from PIL import Image

from clevr_remv.show.picture import DPI, scene_figure
from clevr_remv.show.gather import Sentence, load_scene, object_label, targets_label
from clevr_remv.show.outline import outlines, svg_path
from clevr_remv.show.viewer import render_page, script_json
from clevr_remv.store.reader import DatasetReader

INJECTION = ('Find <b>the</b> cube </script><script>window.__pwned = 1;</script> & '
             '<img src=x onerror="window.__pwned = 2"> <!--<script>')


def figure_texts(fig) -> list[str]:
    """Every text on the page, whitespace normalised (sentences are wrapped over lines)."""
    texts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        texts += [t.get_text() for t in ax.texts] + [ax.get_title(loc="left"), ax.get_xlabel()]
    return [" ".join(t.split()) for t in texts]


def test_load_scene_finds_each_scene_by_its_index(tiny_dataset: Path) -> None:
    reader = DatasetReader(tiny_dataset)
    for split in ("train", "val"):
        for shard, row in reader.iter_scenes(split):
            scene = shard.scene(row)
            data = load_scene(tiny_dataset, split, scene.index)
            assert data.scene == scene
            assert data.images.shape == (9, 48, 64, 3) and data.masks.shape == (9, 48, 64)
            np.testing.assert_array_equal(data.masks[4], shard.view(row, 4)["mask"])
            expected = [r["expression"] for r in shard.refs() if r["scene"] == row]
            assert [s.text for s in data.sentences] == expected and expected


def test_figure_shows_every_sentence_and_object(tiny_dataset: Path) -> None:
    data = load_scene(tiny_dataset, "train", 1)
    texts = figure_texts(scene_figure(data))
    for sentence in data.sentences:
        assert " ".join(sentence.text.split()) in texts
    for obj in data.scene.objects:
        assert f"{obj.id} {object_label(obj)}" in texts
    assert not any("HIDDEN" in t for t in texts)


def test_figure_marks_views_where_the_referent_is_hidden(tiny_dataset: Path) -> None:
    data = load_scene(tiny_dataset, "train", 1)
    first = data.sentences[0]
    visible = first.visible.copy()
    visible[0] = False  # the top-left corner
    data = dataclasses.replace(data, sentences=(dataclasses.replace(first, visible=visible),))
    texts = figure_texts(scene_figure(data))
    assert texts.count("corner (0, 0) · HIDDEN") == 1
    assert any("hidden in 1 of 9 views" in t for t in texts)


def test_the_harder_language_shows_every_target_and_says_when_there_is_none(harder_dataset: Path) -> None:
    """Each sentence of every scene is drawn with its target set in words: one object, several, or none."""
    reader, told = DatasetReader(harder_dataset), set()
    for split in ("train", "val", "test"):
        for shard, row in reader.iter_scenes(split):
            data = load_scene(harder_dataset, split, shard.scene(row).index)
            refs = shard.ref_table()
            assert [s.targets for s in data.sentences] == [refs.target_ids(k) for k in np.flatnonzero(refs.scene == row)]
            figure = scene_figure(data)
            texts = figure_texts(figure)
            for sentence in data.sentences:
                label = targets_label(sentence, data.scene)
                assert any(t.endswith(f"{sentence.family} · {label}") or f"{sentence.family} · {label} ·" in t
                           for t in texts), label
                told.add(min(len(sentence.targets), 2))
    assert told == {0, 1, 2}


def test_show_writes_a_png_of_the_page_size(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "scene.png"
    result = run_cli("show", str(tiny_dataset), "--split", "val", "--scene", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    width, height = (scene_figure(load_scene(tiny_dataset, "val", 0)).get_size_inches() * DPI).round().astype(int)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (width, height)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10  # not a blank page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.png"]  # no temporary file left


def test_show_writes_a_viewer_page(tiny_dataset: Path, tmp_path: Path) -> None:
    page = tmp_path / "scene.html"
    result = run_cli("show", str(tiny_dataset), "--scene", "1", "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "default-src 'none'" in text and "{{" not in text
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)  # nothing from the network
    data = json.loads(re.search(r'<script type="application/json" id="scene-data">(.*?)</script>', text, re.S)[1])
    assert len(data["images"]) == len(data["depth"]) == len(data["shapes"]) == 9
    assert all(uri.startswith("data:image/png;base64,") for uri in data["images"])
    assert [r["text"] for r in data["refs"]] == [s.text for s in load_scene(tiny_dataset, "train", 1).sentences]


@pytest.mark.parametrize("args, message", [
    (["--split", "nope"], "split 'nope' not in"),
    (["--split", "train", "--scene", "2"], "scene 2 out of range: split 'train' has 2 scenes"),
    (["--split", "test"], "split 'test' has 0 scenes"),
    (["--scene", "-1"], "scene -1 out of range"),
])
def test_show_errors_name_the_problem(tiny_dataset: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "scene.png"
    result = run_cli("show", str(tiny_dataset), *args, "--out", str(out))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output and result.output.count("\n") == 1
    assert not out.exists()


def test_show_refuses_a_directory_that_is_not_a_dataset(tmp_path: Path) -> None:
    result = run_cli("show", str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 1 and result.output == (
        f"Error: {tmp_path} is not a clevr-remv dataset: no dataset.json and no complete shard (render into it first)\n")
    result = run_cli("show", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 1 and result.output.endswith("is not a clevr-remv dataset: no such directory\n")


def test_show_refuses_an_output_in_a_missing_directory(tiny_dataset: Path, tmp_path: Path) -> None:
    result = run_cli("show", str(tiny_dataset), "--html", str(tmp_path / "no" / "x.html"))
    assert result.exit_code == 1 and result.output == f"Error: cannot write {tmp_path / 'no' / 'x.html'}: " \
        f"directory {tmp_path / 'no'} does not exist\n"


def test_viewer_page_escapes_every_embedded_text(tiny_dataset: Path) -> None:
    data = load_scene(tiny_dataset, "train", 1)
    evil = Sentence(id=99, object=1, text=INJECTION, family="<i>family</i>", visible=data.sentences[0].visible)
    page = render_page(dataclasses.replace(data, sentences=data.sentences + (evil,)))
    assert "window.__pwned" in page  # the text is there ...
    for raw in ("<script>window", "</script><script>", "<img src=x", "<b>the</b>", "<i>family", "<!--<script>"):
        assert raw not in page  # ... but never as markup
    assert page.count("</script>") == 2  # the data block and the viewer's script
    blob = re.search(r'id="scene-data">(.*?)</script>', page, re.S)[1]
    assert json.loads(blob)["refs"][-1]["text"] == INJECTION  # the escaping loses nothing


def test_script_json_round_trips_any_text() -> None:
    value = {"t": "</script><!-- & \u2028 <\u00e9>"}
    text = script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=7, max_size=7), min_size=5, max_size=5))
def test_outlines_enclose_exactly_the_object_pixels(cells: list[list[bool]]) -> None:
    """A pixel centre is inside an odd number of rings exactly when it belongs to the object."""
    mask = np.kron(np.array(cells, np.uint8) * 3, np.ones((2, 2), np.uint8))  # object 3, blobs and holes
    rings = outlines(mask, 3)
    ys, xs = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    centres = np.column_stack([xs.ravel(), ys.ravel()]).astype(float)
    inside = np.zeros(len(centres), int)
    for ring in rings:
        inside += MplPath(ring).contains_points(centres)
    np.testing.assert_array_equal((inside % 2 == 1).reshape(mask.shape), mask == 3)
    assert svg_path(rings).count("M") == len(rings)
