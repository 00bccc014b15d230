"""Amodal masks in show (the referent's amodal outline, dashed where hidden) and in export coco --amodal."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import LIGHTFIELD_ARGS, render_tiny, run_cli
from matplotlib.patches import Polygon

from clevr_remv.show.picture import scene_figure
from clevr_remv.show.gather import load_scene


AMODAL_ARGS = [*LIGHTFIELD_ARGS, "--amodal-masks"]


@pytest.fixture(scope="module")
def amodal_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wide-baseline fixture's scenes (occluded referents in train) with --amodal-masks."""
    return render_tiny(tmp_path_factory, "amodal", AMODAL_ARGS)


def occluded_referent(root: Path):
    """(scene data, sentence, view) of a referent partly hidden in a centre or corner view."""
    for index in range(3):
        data = load_scene(root, "train", index)
        for sentence in data.sentences:
            for view in (data.centre, *data.corners):
                amodal = data.amodal(view, sentence.object)
                visible = data.masks[view] == sentence.object
                if visible.any() and (amodal & ~visible).sum() >= 10:
                    return data, sentence, view
    raise AssertionError("no occluded referent in the fixture")


def polygons(fig) -> list[Polygon]:
    return [p for ax in fig.axes for p in ax.patches if isinstance(p, Polygon)]


def test_picture_adds_dashed_amodal_outlines(amodal_dataset: Path, tmp_path: Path) -> None:
    data, _, _ = occluded_referent(amodal_dataset)
    with_amodal, without = polygons(scene_figure(data)), polygons(scene_figure(replace(data, amodal_packed=None)))
    dashed = [p for p in with_amodal if p.get_linestyle() == "--"]
    assert len(with_amodal) > len(without) and len(dashed) >= len(with_amodal) - len(without)
    result = run_cli("show", str(amodal_dataset), "--out", str(tmp_path / "scene.png"))
    assert result.exit_code == 0, result.output


def test_viewer_embeds_the_amodal_outlines_of_the_referents(amodal_dataset: Path, tmp_path: Path) -> None:
    data, sentence, view = occluded_referent(amodal_dataset)
    page = tmp_path / "scene.html"
    result = run_cli("show", str(amodal_dataset), "--split", "train", "--scene", str(data.scene.index),
                     "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    embedded = json.loads(re.search(r'<script type="application/json" id="scene-data">(.*?)</script>', text, re.S)[1])
    assert len(embedded["amodal"]) == len(data.masks)
    assert set(embedded["amodal"][view]) <= {str(s.object) for s in data.sentences}
    visible_path = next(s["d"] for s in embedded["shapes"][view] if s["id"] == sentence.object)
    assert embedded["amodal"][view][str(sentence.object)] != visible_path  # the hidden part shows
    assert 'class: "amodal"' in text


def test_datasets_without_amodal_masks_draw_no_amodal_outline(tiny_dataset: Path) -> None:
    data = load_scene(tiny_dataset, "train", 0)
    assert data.amodal_packed is None and data.amodal(0, 1) is None
    assert not any(p.get_linestyle() == "--" and p.get_linewidth() == 1.2 for p in polygons(scene_figure(data)))


def test_export_coco_amodal_in_the_d2sa_layout(amodal_dataset: Path, tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    from clevr_remv.store import DatasetReader, ShardReader

    out = tmp_path / "coco"
    result = run_cli("export", "coco", str(amodal_dataset), "--out", str(out), "--views", "corners",
                     "--splits", "train", "--amodal", "--no-progress")
    assert result.exit_code == 0, result.output
    coco = COCO(str(out / "annotations" / "instances_train.json"))
    shard = ShardReader(DatasetReader(amodal_dataset).shard_paths("train")[0])  # scenes 0 and 1
    occluded = 0
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        if image["scene"] >= len(shard):
            continue
        amodal = shard.amodal_masks(image["scene"], image["view"])[ann["object"] - 1]
        visible = shard.view(image["scene"], image["view"])["mask"] == ann["object"]
        np.testing.assert_array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), amodal)
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), amodal)  # what loaders call
        np.testing.assert_array_equal(mask_utils.decode(ann["visible_mask"]).astype(bool), visible)
        np.testing.assert_array_equal(mask_utils.decode(ann["invisible_mask"]).astype(bool), amodal & ~visible)
        assert ann["area"] == amodal.sum() and ann["occlude_rate"] == pytest.approx(1 - visible.sum() / amodal.sum())
        occluded += ann["occlude_rate"] > 0
    assert occluded > 0


def test_export_coco_amodal_needs_amodal_masks(tiny_dataset: Path, tmp_path: Path) -> None:
    result = run_cli("export", "coco", str(tiny_dataset), "--out", str(tmp_path / "coco"), "--amodal",
                     "--no-progress")
    assert result.exit_code == 1 and "has no amodal masks" in result.output
    assert not (tmp_path / "coco").exists()
