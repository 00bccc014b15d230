"""`export refcoco` and `export coco`: round trips back to the shards through the files a
RES or COCO code base reads."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import copy_hiding_referents
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from clevr_remv import RefDataset
from clevr_remv.cli import main
from clevr_remv.export import common, export_refcoco
from clevr_remv.store import DatasetReader


def export(*args: str):
    return CliRunner().invoke(main, ["export", *args, "--no-progress"])


class MiniRefer:
    """The indices REFER (refer.py of LAVT/CRIS) builds, from the fields it reads, and its getMask."""

    def __init__(self, data_root: Path, dataset: str = "refcoco", split_by: str = "unc") -> None:
        self.image_dir = data_root / "images/mscoco/images/train2014"
        with open(data_root / dataset / f"refs({split_by}).p", "rb") as f:
            self.refs = pickle.load(f)
        instances = json.loads((data_root / dataset / "instances.json").read_text())
        self.Anns = {a["id"]: a for a in instances["annotations"]}
        self.Imgs = {i["id"]: i for i in instances["images"]}
        self.Cats = {c["id"]: c["name"] for c in instances["categories"]}
        self.Refs = {r["ref_id"]: r for r in self.refs}
        self.refToAnn = {r["ref_id"]: self.Anns[r["ann_id"]] for r in self.refs}
        self.Sents = {s["sent_id"]: s for r in self.refs for s in r["sentences"]}
        self.sentToTokens = {s["sent_id"]: s["tokens"] for r in self.refs for s in r["sentences"]}
        assert len(self.Refs) == len(self.refs) and len(self.Anns) == len(instances["annotations"])

    def getRefIds(self, split: str) -> list[int]:  # noqa: N802  (REFER's names)
        return [r["ref_id"] for r in self.refs if r["split"] == split]

    def getMask(self, ref: dict) -> np.ndarray:  # noqa: N802
        ann = self.refToAnn[ref["ref_id"]]
        assert not isinstance(ann["segmentation"][0], list)  # REFER takes lists for polygons
        return np.sum(mask_utils.decode(ann["segmentation"]), axis=2).astype(np.uint8)


def shard_pairs(root: Path, split: str) -> dict[int, tuple[Path, int, int, str, np.ndarray]]:
    """refs/id -> (shard, row, object, sentence, visible) straight from the files."""
    pairs = {}
    for path in DatasetReader(root).shard_paths(split):
        with h5py.File(path, "r") as f:
            g = f["refs"]
            for k, pid in enumerate(g["id"][()]):
                pairs[int(pid)] = (path, int(g["scene"][k]), int(g["object"][k]), g["expression"].asstr()[k],
                                   g["visible"][k])
    return pairs


@pytest.fixture(scope="module")
def refcoco_all(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("refcoco") / "out"
    result = export("refcoco", str(tiny_dataset), "--out", str(out), "--views", "all")
    assert result.exit_code == 0, result.output
    return out


def test_refer_loads_every_ref_with_the_shards_sentence_mask_and_split(tiny_dataset: Path, refcoco_all: Path) -> None:
    refer = MiniRefer(refcoco_all)
    checked = 0
    for split in ("train", "val", "test"):
        pairs = shard_pairs(tiny_dataset, split)
        for rid in refer.getRefIds(split=split):
            ref = refer.Refs[rid]
            path, row, obj, sentence, _ = pairs[ref["clevr_remv_ref_id"]]  # the package's ref_id: refs/id
            # REFER's ref_id is the package's sample_id of the (pair, view) (docs/output-format.md, "Ids")
            split_no = DatasetReader(tiny_dataset).splits.index(split) + 1
            assert rid == common.sample_id(split_no, ref["clevr_remv_ref_id"], ref["view"])
            assert common.sample_parts(rid) == (split_no, ref["clevr_remv_ref_id"], ref["view"])
            assert ref["split"] == split and ref["object"] == obj
            assert [s["raw"] for s in ref["sentences"]] == [sentence]
            assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]
            assert refer.sentToTokens[ref["sent_ids"][0]] == ref["sentences"][0]["sent"].split()
            image = refer.Imgs[ref["image_id"]]
            assert image["file_name"] == ref["file_name"] == f"clevr_remv_{split}_{ref['scene']:05d}_v{ref['view']:02d}.png"
            with h5py.File(path, "r") as f:
                np.testing.assert_array_equal(refer.getMask(ref), f["masks"][row, ref["view"]] == obj)
                shape = json.loads(f["scenes"].asstr()[row])["objects"][obj - 1]["shape"]
            assert refer.Cats[ref["category_id"]] == shape
            checked += 1
    # one ref per visible (pair, view): the same samples the loader yields
    loaded = {(split, s["ref_id"], s["view"]) for split in ("train", "val")
              for ds in [RefDataset(tiny_dataset, split, views="all")] for s in (ds[i] for i in range(len(ds)))}
    assert {(r["split"], r["clevr_remv_ref_id"], r["view"]) for r in refer.refs} == loaded
    assert checked == len(refer.refs) == len(loaded) > 0


def test_every_rle_decodes_to_the_shard_mask(tiny_dataset: Path, refcoco_all: Path) -> None:
    instances = json.loads((refcoco_all / "refcoco/instances.json").read_text())
    images = {i["id"]: i for i in instances["images"]}
    scenes_per_split = {s: e["scenes"] for s, e in DatasetReader(tiny_dataset).manifest["splits"].items()}
    assert len(images) == sum(scenes_per_split.values()) * 9
    by_image: dict[int, list[dict]] = {}
    for ann in instances["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for split in ("train", "val"):
        for path in DatasetReader(tiny_dataset).shard_paths(split):
            with h5py.File(path, "r") as f:
                first = int(f.attrs["first_scene"])
                for row in range(f["masks"].shape[0]):
                    for view in range(9):
                        mask = f["masks"][row, view]
                        iid = common.image_id(split_no=["train", "val", "test"].index(split) + 1,
                                              scene=first + row, view=view)
                        anns = by_image[iid]
                        assert sorted(a["object"] for a in anns) == sorted(set(np.unique(mask)) - {0})
                        for ann in anns:
                            decoded = mask_utils.decode(ann["segmentation"])[:, :, 0]
                            np.testing.assert_array_equal(decoded, mask == ann["object"])
                            assert ann["area"] == decoded.sum() and ann["iscrowd"] == 0
                            x, y, w, h = ann["bbox"]
                            ys, xs = np.nonzero(decoded)
                            assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                        png = Image.open(refcoco_all / "images/mscoco/images/train2014" / images[iid]["file_name"])
                        assert png.format == "PNG" and png.size == (images[iid]["width"], images[iid]["height"]) == (64, 48)
                        np.testing.assert_array_equal(np.asarray(png), f["images"][row, view])


def test_ids_are_unique_and_plain_ints(refcoco_all: Path) -> None:
    refer = MiniRefer(refcoco_all)
    for ref in refer.refs:  # REFER's loadRefs/loadImgs test `type(x) == int`
        assert all(type(ref[k]) is int for k in ("ref_id", "ann_id", "image_id", "category_id"))
    assert len({r["ref_id"] for r in refer.refs}) == len(refer.refs)
    assert len(refer.Sents) == len(refer.refs)


def test_corners_export_four_images_per_scene(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "corners"
    result = export("refcoco", str(tiny_dataset), "--out", str(out), "--views", "corners", "--splits", "train")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (out / "images/mscoco/images/train2014").iterdir())
    assert files == [f"clevr_remv_train_{s:05d}_v{v:02d}.png" for s in (0, 1) for v in (0, 2, 6, 8)]
    refer = MiniRefer(out)
    assert {r["view"] for r in refer.refs} == {0, 2, 6, 8} and refer.getRefIds(split="val") == []
    summary = json.loads((out / "export.json").read_text())
    assert summary["views"] == [0, 2, 6, 8] and summary["splits"]["train"]["images"] == 8


def test_invisible_referents_are_skipped_and_counted(tiny_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    hidden = copy_hiding_referents(tiny_dataset, root, {1: [0, 8]})[1]
    summary = export_refcoco(root, tmp_path / "out", views="corners", splits=["train"])
    assert summary["splits"]["train"]["skipped_invisible"] == 2
    refer = MiniRefer(tmp_path / "out")
    assert sorted(r["view"] for r in refer.refs if r["clevr_remv_ref_id"] == hidden) == [2, 6]
    assert summary["splits"]["train"]["refs"] == len(refer.refs) == 16 * 4 - 2


def test_non_empty_out_is_refused_unless_overwrite(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = export("refcoco", str(tiny_dataset), "--out", str(out))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == f"Error: --out {out} is not empty (pass --overwrite to replace it)"
    assert (out / "keep.txt").read_text() == "mine"
    result = export("refcoco", str(tiny_dataset), "--out", str(out), "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists() and (out / "refcoco/refs(unc).p").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left
    result = export("coco", str(tiny_dataset), "--out", str(tiny_dataset), "--overwrite")
    assert result.exit_code == 1 and "would replace the dataset" in result.output


@pytest.mark.parametrize("args, message", [
    (["--views", "9"], "Error: view 9 is outside the 3x3 rig"),
    (["--splits", "train,dev"], "Error: split 'dev' not in"),
])
def test_bad_options_fail_in_one_line(tiny_dataset: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = export("refcoco", str(tiny_dataset), "--out", str(tmp_path / "out"), *args)
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith(message)
    assert not (tmp_path / "out").exists()


def test_a_failed_export_leaves_the_previous_one(tiny_dataset: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    export_refcoco(tiny_dataset, out, views="center")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    calls = []

    def failing_png(image: np.ndarray, path: Path) -> None:
        calls.append(path)
        if len(calls) == 5:
            raise OSError("disk full")
        Image.fromarray(image).save(path)

    monkeypatch.setattr(common, "write_png", failing_png)
    with pytest.raises(OSError, match="disk full"):
        export_refcoco(tiny_dataset, out, views="all", overwrite=True)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_coco_export_loads_with_pycocotools(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "coco"
    result = export("coco", str(tiny_dataset), "--out", str(out), "--views", "0,4")
    assert result.exit_code == 0, result.output
    for split in ("train", "val"):
        coco = COCO(str(out / "annotations" / f"instances_{split}.json"))
        assert sorted(coco.getImgIds()) == sorted(i["id"] for i in coco.dataset["images"])
        assert len(coco.dataset["images"]) == DatasetReader(tiny_dataset).manifest["splits"][split]["scenes"] * 2
        path = DatasetReader(tiny_dataset).shard_paths(split)[0]
        with h5py.File(path, "r") as f:
            for image in coco.dataset["images"]:
                row = image["scene"] - int(f.attrs["first_scene"])
                if row >= f["masks"].shape[0]:
                    continue
                mask = f["masks"][row, image["view"]]
                assert np.asarray(Image.open(out / split / image["file_name"])).shape == (48, 64, 3)
                for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
                    np.testing.assert_array_equal(coco.annToMask(ann), mask == ann["object"])
                    assert coco.loadCats(ann["category_id"])[0]["name"] in ("cube", "sphere", "cylinder")
    assert json.loads((out / "annotations/instances_test.json").read_text())["images"] == []


@pytest.mark.parametrize("kind", ["refcoco", "coco"])
def test_workers_write_the_same_export(tiny_dataset: Path, tmp_path: Path, kind: str) -> None:
    for workers in ("1", "2"):
        result = export(kind, str(tiny_dataset), "--out", str(tmp_path / workers), "--views", "corners",
                        "--workers", workers)
        assert result.exit_code == 0, result.output
    files = {w: sorted(p.relative_to(tmp_path / w) for p in (tmp_path / w).rglob("*") if p.is_file())
             for w in ("1", "2")}
    assert files["1"] == files["2"] and len(files["1"]) > 12
    for name in files["1"]:
        one, two = (tmp_path / "1" / name).read_bytes(), (tmp_path / "2" / name).read_bytes()
        if name.suffix == ".p":  # pickle's memo differs for strings shared within one process
            assert pickle.loads(one) == pickle.loads(two)
        elif name.name != "export.json":  # which records the output folder
            assert one == two, name


def test_an_empty_split_is_said_and_refused_alone(tiny_dataset: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The tiny dataset's 3 scenes split 2/1/0: its test split has no scenes."""
    alone = export("coco", str(tiny_dataset), "--out", str(tmp_path / "alone"), "--splits", "test")
    assert alone.exit_code == 1 and "Traceback" not in alone.output
    assert alone.output.strip().splitlines()[-1] == f"Error: nothing to export: no scenes in split 'test' of {tiny_dataset}"
    assert not (tmp_path / "alone").exists()
    with caplog.at_level("WARNING", logger="clevr_remv"):
        summary = export_refcoco(tiny_dataset, tmp_path / "out", views="center", splits=["val", "test"])
    assert f"split 'test' of {tiny_dataset} has no scenes: its export files are empty" in caplog.text
    assert "'val'" not in caplog.text and summary["splits"]["test"]["refs"] == 0


def test_refcoco_refuses_sentences_that_name_several_objects_or_none(harder_dataset: Path, tmp_path: Path) -> None:
    """REFER's ref has one ann_id: a dataset made with --targets any is refused in one line, naming
    how many pairs and `export grefcoco`, before anything is written."""
    reader = DatasetReader(harder_dataset)
    counts = np.concatenate([reader.ref_table(s).target_count for s in reader.splits])
    several, none = int((counts > 1).sum()), int((counts == 0).sum())
    assert several and none  # the fixture's premise
    out = tmp_path / "out"
    result = export("refcoco", str(harder_dataset), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        f"Error: {several + none} referring pairs of train, val, test name several objects ({several}) or none "
        f"({none}), which REFER's one-object refs cannot hold: export them with clevr-remv export grefcoco"]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="export grefcoco"):
        export_refcoco(harder_dataset, out, views="corners", splits=["train"])
    assert list(tmp_path.iterdir()) == []


def test_coco_exports_a_dataset_of_several_and_no_target_sentences(harder_dataset: Path, tmp_path: Path) -> None:
    """export coco writes instances, not sentences: --targets any (refs/object 0) changes nothing in it."""
    out = tmp_path / "coco"
    result = export("coco", str(harder_dataset), "--out", str(out), "--views", "corners", "--splits", "train,val")
    assert result.exit_code == 0, result.output
    for split in ("train", "val"):
        coco = COCO(str(out / "annotations" / f"instances_{split}.json"))
        assert len(coco.dataset["images"]) == DatasetReader(harder_dataset).manifest["splits"][split]["scenes"] * 4
        with h5py.File(harder_dataset / f"{split}.h5", "r") as f:
            for image in coco.dataset["images"]:
                mask = f["masks"][image["scene"], image["view"]]
                anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
                assert sorted(a["object"] for a in anns) == sorted(set(np.unique(mask)) - {0})
                for ann in anns:
                    np.testing.assert_array_equal(coco.annToMask(ann), mask == ann["object"])
