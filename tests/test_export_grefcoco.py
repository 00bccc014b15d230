"""`export grefcoco`: what ReLA's G_REFER reads from the export is what RefDataset gives, (pair, view) by
(pair, view), for sentences that name one object, several or none."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools import mask as mask_utils

from clevr_remv import RefDataset
from clevr_remv.cli import main
from clevr_remv.export import common, export_grefcoco, export_refcoco
from clevr_remv.store import DatasetReader


def export(*args: str):
    return CliRunner().invoke(main, ["export", *args, "--no-progress"])


class GRefer:
    """ReLA's G_REFER (henghuiding/ReLA, gres_model/data/datasets/grefer.py) as far as a loader uses it:
    the files it opens, the keys it reads, the indices createIndex builds, and getMask / getMaskByRef.
    Written from its code, with its names, so that a key or a format it would trip over trips here."""

    def __init__(self, data_root: Path, dataset: str = "grefcoco", split_by: str = "unc") -> None:
        self.DATA_DIR = data_root / dataset
        assert dataset == "grefcoco"  # G_REFER raises KeyError for any other name
        self.IMAGE_DIR = data_root / "images/train2014"
        pickled = self.DATA_DIR / f"grefs({split_by}).p"  # tried first, then the JSON
        path = pickled if pickled.exists() else self.DATA_DIR / f"grefs({split_by}).json"
        self.data = {"refs": json.loads(path.read_text())}
        instances = json.loads((self.DATA_DIR / "instances.json").read_text())
        for key in ("images", "annotations", "categories"):
            self.data[key] = instances[key]
        self.createIndex()

    @staticmethod
    def _toList(x):  # noqa: N802  (G_REFER's names)
        return x if isinstance(x, list) else [x]

    def createIndex(self) -> None:  # noqa: N802
        self.Anns: dict = {-1: None}
        self.imgToAnns: dict = {}
        for ann in self.data["annotations"]:
            self.Anns[ann["id"]] = ann
            self.imgToAnns[ann["image_id"]] = self.imgToAnns.get(ann["image_id"], []) + [ann]
        self.Imgs = {img["id"]: img for img in self.data["images"]}
        self.Cats = {cat["id"]: cat["name"] for cat in self.data["categories"]}
        self.Refs, self.imgToRefs, self.refToAnn, self.catToRefs = {}, {}, {}, {}
        self.Sents, self.sentToRef, self.sentToTokens, self.availableSplits = {}, {}, {}, []
        for ref in self.data["refs"]:
            ref_id, image_id = ref["ref_id"], ref["image_id"]
            if ref["split"] not in self.availableSplits:
                self.availableSplits.append(ref["split"])
            assert ref_id not in self.Refs  # G_REFER prints 'Duplicate ref id'
            self.Refs[ref_id] = ref
            self.imgToRefs[image_id] = self.imgToRefs.get(image_id, []) + [ref]
            for cat in dict.fromkeys(self._toList(ref["category_id"])):
                self.catToRefs[cat] = self.catToRefs.get(cat, []) + [ref]
            self.refToAnn[ref_id] = [self.Anns[ann] for ann in self._toList(ref["ann_id"])]
            for sent in ref["sentences"]:
                self.Sents[sent["sent_id"]] = sent
                self.sentToRef[sent["sent_id"]] = ref
                self.sentToTokens[sent["sent_id"]] = sent["tokens"]

    def getRefIds(self, split: str) -> list[int]:  # noqa: N802
        if split not in self.availableSplits:
            raise ValueError(f"Invalid split name: {split}")
        return [ref["ref_id"] for ref in self.data["refs"] if ref["split"] == split]

    def loadAnns(self, ann_ids) -> list:  # noqa: N802
        return [self.Anns[ann_id] for ann_id in self._toList(ann_ids)]

    def getMask(self, ann: dict) -> dict | None:  # noqa: N802
        if not ann:
            return None
        assert not ann["iscrowd"]
        image = self.Imgs[ann["image_id"]]
        if type(ann["segmentation"][0]) is list:  # polygon
            rle = mask_utils.frPyObjects(ann["segmentation"], image["height"], image["width"])
        else:
            rle = ann["segmentation"]
        m = np.sum(mask_utils.decode(rle), axis=2).astype(np.uint8)
        return {"mask": m, "area": sum(mask_utils.area(rle))}

    def getMaskByRef(self, ref: dict) -> dict:  # noqa: N802  (merge=True: what a GRES loader wants)
        if ref["ann_id"] == [-1]:
            img = self.Imgs[self.Refs[ref["ref_id"]]["image_id"]]
            return {"mask": np.zeros([img["height"], img["width"]], dtype=np.uint8), "empty": True}
        masks = [self.getMask(ann) for ann in self.loadAnns(ref["ann_id"]) if not ann["iscrowd"]]
        merged = sum(m["mask"] for m in masks)
        merged[np.where(merged > 1)] = 1
        return {"mask": merged, "empty": False}


def check_as_load_grefcoco_json(refer: GRefer, split: str) -> None:
    """The consistency checks of ReLA's load_grefcoco_json (gres_model/data/datasets/grefcoco.py)."""
    for ref in (refer.Refs[r] for r in refer.getRefIds(split)):
        img = refer.Imgs[ref["image_id"]]
        anns = refer.loadAnns(ref["ann_id"])
        assert ref["image_id"] == img["id"] and ref["split"] == split and isinstance(ref["ann_id"], list)
        if None in anns:  # no target
            assert anns == [None] and ref["ann_id"] == [-1]
        else:
            for ann in anns:
                assert ann["image_id"] == img["id"] and ann["id"] in ref["ann_id"] and ann["segmentation"]
                segm = ann["segmentation"]  # a list is polygons there: those of under 3 points are dropped,
                if not isinstance(segm, dict):  # and an annotation left with none crashes the loader
                    assert [p for p in segm if len(p) % 2 == 0 and len(p) >= 6] == segm and segm
        for sent in ref["sentences"]:
            assert {"raw", "sent_id"} <= set(sent)


@pytest.fixture(scope="module")
def grefcoco_all(harder_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grefcoco") / "out"
    result = export("grefcoco", str(harder_dataset), "--out", str(out), "--views", "all")
    assert result.exit_code == 0, result.output
    return out


def splits_with_scenes(root: Path) -> list[str]:
    return [s for s, e in DatasetReader(root).manifest["splits"].items() if e.get("scenes")]


def test_g_refer_gives_the_loaders_mask_for_every_pair_and_view(harder_dataset: Path, grefcoco_all: Path) -> None:
    refer = GRefer(grefcoco_all)
    counts = set()
    images: dict[int, np.ndarray] = {}
    for split in splits_with_scenes(harder_dataset):
        ds = RefDataset(harder_dataset, split, views="all")
        samples = {(s["ref_id"], s["view"]): s for s in (ds[i] for i in range(len(ds)))}
        refs = [refer.Refs[r] for r in refer.getRefIds(split)]
        # one ref per loader sample: the (pair, view) whose targets are all visible there, none left out
        assert {(r["clevr_remv_ref_id"], r["view"]) for r in refs} == set(samples)
        check_as_load_grefcoco_json(refer, split)
        for ref in refs:
            sample = samples[(ref["clevr_remv_ref_id"], ref["view"])]
            got = refer.getMaskByRef(ref)
            assert got["mask"].dtype == np.uint8 and got["empty"] == (sample["target_count"] == 0)
            np.testing.assert_array_equal(got["mask"].astype(bool), sample["mask"])
            assert ref["targets"] == sample["targets"] and [s["raw"] for s in ref["sentences"]] == [sample["sentence"]]
            if sample["target_count"] == 0:
                assert ref["no_target"] is True and ref["ann_id"] == [-1] and ref["category_id"] == [-1]
                assert not sample["mask"].any()
            else:
                assert ref["no_target"] is False and len(ref["ann_id"]) == sample["target_count"]
                anns = refer.refToAnn[ref["ref_id"]]
                assert [a["object"] for a in anns] == sample["targets"]
                assert ref["category_id"] == [a["category_id"] for a in anns]
            image = refer.Imgs[ref["image_id"]]
            assert image["file_name"] == ref["file_name"] and (image["scene"], image["view"]) == (
                sample["scene"], sample["view"])
            if image["id"] not in images:
                images[image["id"]] = np.asarray(Image.open(refer.IMAGE_DIR / image["file_name"]))
            np.testing.assert_array_equal(images[image["id"]], sample["image"])
            counts.add(min(sample["target_count"], 2))
    assert counts == {0, 1, 2}  # the fixture's point: no-target, single and multi-target refs all checked


def test_rle_segmentation_gives_the_loaders_masks_too(harder_dataset: Path, tmp_path: Path) -> None:
    """--segmentation rle: a one-element list of an RLE with text counts, as REFER's; exact whatever the mask."""
    export_grefcoco(harder_dataset, tmp_path / "out", views="corners", segmentation="rle")
    refer = GRefer(tmp_path / "out")
    for ann in refer.data["annotations"]:
        assert isinstance(ann["segmentation"], list) and isinstance(ann["segmentation"][0]["counts"], str)
    for split in splits_with_scenes(harder_dataset):
        ds = RefDataset(harder_dataset, split, views="corners")
        samples = {(s["ref_id"], s["view"]): s for s in (ds[i] for i in range(len(ds)))}
        for ref in (refer.Refs[r] for r in refer.getRefIds(split)):
            np.testing.assert_array_equal(refer.getMaskByRef(ref)["mask"].astype(bool),
                                          samples[(ref["clevr_remv_ref_id"], ref["view"])]["mask"])


def test_a_polygon_fills_a_hole_and_says_so() -> None:
    """COCO polygons have no holes: a ring-shaped visible mask (a nearer object in front of the middle of a
    farther one) comes back filled, and mask_polygons says it is inexact; a mask without a hole is exact."""
    ring = np.zeros((20, 24), bool)
    ring[3:17, 4:20] = True
    plain, exact = common.mask_polygons(ring)
    assert exact and len(plain) == 1
    ring[7:12, 9:14] = False
    polygons, exact = common.mask_polygons(ring)
    assert not exact and len(polygons) == 2
    with pytest.raises(ValueError, match="--segmentation 'bitmap': choose polygon or rle"):
        export_grefcoco(Path("nowhere"), Path("nowhere"), segmentation="bitmap")


def test_refs_hold_the_keys_and_types_g_refer_reads(harder_dataset: Path, grefcoco_all: Path) -> None:
    data = grefcoco_all / "grefcoco"
    assert sorted(p.name for p in data.iterdir()) == ["grefs(unc).json", "instances.json"]
    refs = json.loads((data / "grefs(unc).json").read_text())
    refer = GRefer(grefcoco_all)
    assert len(refer.Refs) == len(refs) > 0 and len(refer.Sents) == len(refs)
    for ref in refs:
        assert all(type(ref[k]) is int for k in ("ref_id", "image_id"))
        assert all(type(k) is int for k in ref["ann_id"] + ref["category_id"])
        assert len(ref["ann_id"]) == len(ref["category_id"]) >= 1 and type(ref["no_target"]) is bool
        assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]
        sent = ref["sentences"][0]
        assert sent["tokens"] == sent["sent"].split() == common.tokens(sent["raw"])
        numbers = DatasetReader(harder_dataset).splits
        assert ref["ref_id"] == common.sample_id(numbers.index(ref["split"]) + 1, ref["clevr_remv_ref_id"], ref["view"])
    for ann in refer.data["annotations"]:  # COCO polygons by default, as gRefCOCO's
        assert isinstance(ann["segmentation"], list) and all(
            isinstance(p, list) and len(p) % 2 == 0 and len(p) >= 6 for p in ann["segmentation"])
    assert set(refer.Cats.values()) <= {"cube", "sphere", "cylinder"}
    assert {c for ref in refs for c in ref["category_id"]} - {-1} <= set(refer.Cats)
    summary = json.loads((grefcoco_all / "export.json").read_text())
    assert summary["format"] == "grefcoco" and summary["g_refer"]["dataset"] == "grefcoco"
    for split, c in summary["splits"].items():
        mine = [r for r in refs if r["split"] == split]
        assert c["refs"] == len(mine) and c["no_target"] == sum(r["no_target"] for r in mine)
        assert c["multi_target"] == sum(len(r["ann_id"]) > 1 for r in mine)
        assert c["images"] == sum(i["clevr_remv_split"] == split for i in refer.data["images"])
    assert sum(c["no_target"] for c in summary["splits"].values()) > 0
    assert summary["segmentation"] == "polygon" and all(c["inexact_polygons"] == 0 for c in summary["splits"].values())
    assert sum(c["multi_target"] for c in summary["splits"].values()) > 0


def test_a_single_target_dataset_exports_refcocos_refs_as_lists(tiny_dataset: Path, tmp_path: Path) -> None:
    """On the published language every gRefCOCO ref is its RefCOCO ref with ann_id and category_id as lists."""
    export_refcoco(tiny_dataset, tmp_path / "refcoco", views="corners")
    summary = export_grefcoco(tiny_dataset, tmp_path / "grefcoco", views="corners", segmentation="rle")
    one = {r["ref_id"]: r for r in pickle.loads((tmp_path / "refcoco/refcoco/refs(unc).p").read_bytes())}
    many = {r["ref_id"]: r for r in json.loads((tmp_path / "grefcoco/grefcoco/grefs(unc).json").read_text())}
    assert set(one) == set(many) and len(one) > 0
    for rid, ref in many.items():
        old = one[rid]
        assert ref["ann_id"] == [old["ann_id"]] and ref["category_id"] == [old["category_id"]]
        assert ref["targets"] == [old["object"]] and ref["no_target"] is False
        assert {k: ref[k] for k in ("image_id", "split", "file_name", "sentences", "sent_ids", "scene", "view")} == {
            k: old[k] for k in ("image_id", "split", "file_name", "sentences", "sent_ids", "scene", "view")}
    instances = [json.loads(p.read_text()) for p in (tmp_path / "refcoco/refcoco/instances.json",
                                                     tmp_path / "grefcoco/grefcoco/instances.json")]
    assert instances[0]["annotations"] == instances[1]["annotations"]
    assert instances[0]["images"] == instances[1]["images"]
    assert sorted(os.listdir(tmp_path / "grefcoco/images/train2014")) == sorted(
        os.listdir(tmp_path / "refcoco/images/mscoco/images/train2014"))
    assert all(c["no_target"] == c["multi_target"] == 0 for c in summary["splits"].values())


def test_the_command_reports_counts_and_workers_write_the_same_files(harder_dataset: Path, tmp_path: Path) -> None:
    outputs = {}
    for workers in ("1", "2"):
        result = export("grefcoco", str(harder_dataset), "--out", str(tmp_path / workers), "--views", "corners",
                        "--workers", workers)
        assert result.exit_code == 0, result.output
        outputs[workers] = result.output.replace(str(tmp_path / workers), "OUT")
    assert outputs["1"] == outputs["2"]
    summary = json.loads((tmp_path / "1/export.json").read_text())
    lines = outputs["1"].splitlines()
    c = summary["splits"]["train"]
    assert f"train: {c['images']} images, {c['refs']} refs ({c['multi_target']} multi-target, " \
           f"{c['no_target']} no-target), {c['skipped_invisible']} (pair, view) skipped (a target not visible)" in lines
    assert lines[-1] == "wrote OUT: G_REFER data_root=OUT dataset=grefcoco splitBy=unc"
    files = {w: sorted(p.relative_to(tmp_path / w) for p in (tmp_path / w).rglob("*") if p.is_file()) for w in outputs}
    assert files["1"] == files["2"]
    for name in (n for n in files["1"] if n.name != "export.json"):  # which records the output folder
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


@pytest.mark.parametrize("args, message", [
    (["--views", "9"], "Error: view 9 is outside the 3x3 rig"),
    (["--splits", "train,dev"], "Error: split 'dev' not in"),
])
def test_bad_options_fail_in_one_line(harder_dataset: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = export("grefcoco", str(harder_dataset), "--out", str(tmp_path / "out"), *args)
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith(message), result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


def test_hidden_targets_skip_the_pair_in_that_view(harder_dataset: Path, tmp_path: Path) -> None:
    """A (pair, view) leaves the export when one of its targets is hidden there (refs/visible false),
    as it leaves the loader's samples; a no-target pair has nothing to hide."""
    import shutil

    import h5py

    source = Path(shutil.copytree(harder_dataset, tmp_path / "ds"))
    with h5py.File(DatasetReader(source).shard_paths("train")[0], "r+") as f:
        visible = f["refs/visible"][()]
        several = int(np.flatnonzero((f["refs/target_count"][()] > 1) & visible[:, 0])[0])
        shown = [v for v in (2, 6, 8) if visible[several, v]]
        visible[several, 0] = False
        f["refs/visible"][...] = visible
        hidden = int(f["refs/id"][several])
    summary = export_grefcoco(source, tmp_path / "out", views="corners", splits=["train"])
    refs = json.loads((tmp_path / "out/grefcoco/grefs(unc).json").read_text())
    assert sorted(r["view"] for r in refs if r["clevr_remv_ref_id"] == hidden) == shown
    ds = RefDataset(source, "train", views="corners")
    assert summary["splits"]["train"]["refs"] == len(refs) == len(ds)
    pairs = len(DatasetReader(source).ref_table("train"))
    assert summary["splits"]["train"]["skipped_invisible"] == pairs * 4 - len(ds) >= 1
