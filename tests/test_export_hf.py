"""`export hf`: what Hugging Face `datasets` loads from the Parquet files is RefDataset, row by row."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import copy_hiding_referents

from clevr_remv import RefDataset
from clevr_remv.cli import main
from clevr_remv.export import common
from clevr_remv.export.hf import ROW_GROUP_ROWS, _regroup, arrow_schema, export_hf
from clevr_remv.store import DatasetReader

SPLITS = ("train", "val")  # the tiny dataset's 3 scenes split 2/1/0


def export(*args: str):
    return CliRunner().invoke(main, ["export", "hf", *args, "--no-progress"])


@pytest.fixture(scope="module")
def hf(tmp_path_factory: pytest.TempPathFactory) -> object:
    """`datasets`, kept off the network and out of ~/.cache: its cache in a temporary folder."""
    home = tmp_path_factory.mktemp("hf-home")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"HF_HOME": str(home), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
                            "HF_DATASETS_CACHE": str(home / "datasets")}.items():
            mp.setenv(name, value)
        import datasets

        mp.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
        datasets.disable_progress_bars()
        yield datasets


def load(hf, out: Path, **kwargs):
    return hf.load_dataset(str(out), cache_dir=str(out.parent / "hf-cache"), **kwargs)


@pytest.fixture(scope="module")
def hf_all(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "out"
    result = export(str(tiny_dataset), "--out", str(out), "--views", "all")
    assert result.exit_code == 0, result.output
    return out


def box(mask: np.ndarray) -> list[int] | None:
    """[x, y, w, h] of a boolean mask, from the pixel coordinates themselves."""
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)] if len(xs) else None


def test_load_dataset_gives_refdataset_row_by_row(hf, tiny_dataset: Path, hf_all: Path) -> None:
    loaded = load(hf, hf_all)
    assert set(loaded) == set(SPLITS)  # the empty test split has no file (datasets cannot load one)
    numbers = DatasetReader(tiny_dataset).splits
    for split in SPLITS:
        ref, rows = RefDataset(tiny_dataset, split, views="all"), loaded[split]
        assert len(rows) == len(ref) > ROW_GROUP_ROWS // 2
        objects: dict[tuple[str, int], dict] = {}
        for i, row in enumerate(rows):
            sample = ref[i]
            np.testing.assert_array_equal(np.asarray(row["image"]), sample["image"])
            mask = np.asarray(row["mask"])
            assert mask.dtype == bool and row["mask"].mode == "1"
            np.testing.assert_array_equal(mask, sample["mask"])
            view, pair = sample["view"], sample["ref_id"]
            # the ids mean what docs/output-format.md's "Ids" says: ref_id is the pair's refs/id, as in
            # RefDataset and predictions; sample_id the (pair, view) across splits; pair_id ref_id's old name
            assert (row["sentence"], row["ref_id"], row["scene"], row["object"], row["view"], row["split"]) == (
                sample["sentence"], pair, sample["scene"], sample["object"], view, split)
            assert row["pair_id"] == row["ref_id"]
            assert row["targets"] == sample["targets"] == [sample["object"]]  # the published language: one each
            assert (row["view_row"], row["view_col"]) == divmod(view, 3)
            assert row["sample_id"] == common.sample_id(numbers.index(split) + 1, pair, view)
            assert common.sample_parts(row["sample_id"]) == (numbers.index(split) + 1, pair, view)
            assert row["image_id"] == common.image_id(numbers.index(split) + 1, sample["scene"], view)
            assert row["bbox"] == box(sample["mask"]) and row["visible"] is True
            assert np.float32(row["visible_fraction"]) == np.float32(sample["visible_fraction"])
            key = (sample["shard"], sample["row"])
            if key not in objects:
                with h5py.File(sample["shard"], "r") as f:
                    scene = json.loads(f["scenes"].asstr()[sample["row"]])
                objects[key] = {o["id"]: o for o in scene["objects"]}
            referent = objects[key][sample["object"]]
            assert [row[k] for k in ("shape", "color", "size", "material")] == [
                referent[k] for k in ("shape", "color", "size", "material")]


def test_features_are_restored_from_the_files(hf, hf_all: Path) -> None:
    features = load(hf, hf_all, split="val").features
    assert isinstance(features["image"], hf.Image) and isinstance(features["mask"], hf.Image)
    assert features["bbox"].length == 4 and features["bbox"].feature.dtype == "int32"
    assert features["sentence"].dtype == "string" and features["visible"].dtype == "bool"
    targets = features["targets"]  # a variable-length list: List in datasets >= 4, Sequence before
    assert getattr(targets, "length", -1) == -1 and targets.feature.dtype == "int32"
    assert list(features) == pq.read_schema(next((hf_all / "data").glob("val-*.parquet"))).names


def test_streaming_gives_the_first_sample_from_one_small_row_group(hf, hf_all: Path) -> None:
    stream = load(hf, hf_all, split="train", streaming=True)
    first = next(iter(stream))
    whole = load(hf, hf_all, split="train")[0]
    assert first["sample_id"] == whole["sample_id"] and first["sentence"] == whole["sentence"]
    np.testing.assert_array_equal(np.asarray(first["image"]), np.asarray(whole["image"]))
    [path] = (hf_all / "data").glob("train-*.parquet")
    assert path.name == "train-00000-of-00001.parquet"
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == -(-meta.num_rows // ROW_GROUP_ROWS) >= 2  # streaming reads one of these
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups - 1)] == [ROW_GROUP_ROWS] * (
        meta.num_row_groups - 1)


def test_max_file_size_splits_a_split_into_numbered_files(hf, tiny_dataset: Path, hf_all: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "small"
    summary = export_hf(tiny_dataset, out, views="all", max_file_bytes=1_000)  # below one row group
    files = sorted((out / "data").glob("train-*.parquet"))
    assert len(files) == -(-summary["splits"]["train"]["rows"] // ROW_GROUP_ROWS) >= 2  # a group per file
    assert [f.name for f in files] == [f"train-{k:05d}-of-{len(files):05d}.parquet" for k in range(len(files))]
    assert summary["parquet"]["files"]["train"] == [f"data/{f.name}" for f in files]
    one, many = load(hf, hf_all, split="train"), load(hf, out, split="train")
    assert many["sample_id"] == one["sample_id"] and many["ref_id"] == one["ref_id"]


def test_parts_regroup_into_whole_groups_and_files_under_the_limit(hf_all: Path, tmp_path: Path) -> None:
    """Rows of uneven per-shard parts become 100-row groups across part boundaries, and each file
    takes groups until the next would pass the limit."""
    [source] = (hf_all / "data").glob("train-*.parquet")
    template = pq.read_table(source).slice(0, 1).to_pylist()[0]
    schema, parts, n = arrow_schema(), [], 0
    for k, count in enumerate((250, 333, 417)):
        rows = [{**template, "sample_id": n + i} for i in range(count)]
        parts.append(tmp_path / f"part{k}.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), parts[-1], row_group_size=77)
        n += count
    group = pq.ParquetFile(source).read_row_group(0).slice(0, 1).nbytes * ROW_GROUP_ROWS  # about
    limit = int(group * 3.5)
    (tmp_path / "data").mkdir()
    files, num_bytes = _regroup(parts, "train", tmp_path / "data", limit)
    tables = [pq.ParquetFile(f) for f in files]
    assert [t.metadata.num_rows for t in tables] == [300, 300, 300, 100]
    assert [t.metadata.row_group(g).num_rows for t in tables for g in range(t.num_row_groups)] == [100] * 10
    sizes = [[t.read_row_group(g).nbytes for g in range(t.num_row_groups)] for t in tables]
    assert all(sum(s) <= limit for s in sizes)
    assert all(sum(s) + nxt[0] > limit for s, nxt in zip(sizes, sizes[1:]))  # no room for the next group
    assert pa.concat_tables([pq.read_table(f) for f in files])["sample_id"].to_pylist() == list(range(1000))
    assert num_bytes == pytest.approx(sum(map(sum, sizes)), rel=0.01)  # read back: validity bitmaps added
    assert pq.read_schema(files[0]).metadata == schema.metadata
    assert not any(part.exists() for part in parts)  # each removed once copied: the export's size on disk once


def test_workers_write_identical_files(tiny_dataset: Path, tmp_path: Path) -> None:
    reader = DatasetReader(tiny_dataset)
    assert sum(len(reader.shard_paths(split)) for split in SPLITS) >= 2  # so two processes do work
    for workers in ("1", "2"):
        result = export(str(tiny_dataset), "--out", str(tmp_path / workers), "--views", "corners",
                        "--workers", workers)
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "1" / "data").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "2" / "data").iterdir()) and len(names) == 2
    for name in names:
        assert (tmp_path / "1" / "data" / name).read_bytes() == (tmp_path / "2" / "data" / name).read_bytes()
    assert not list(tmp_path.glob("*/.parts")) and not list(tmp_path.glob(".*"))


def test_include_hidden_adds_the_hidden_pairs_with_visible_false(hf, tiny_dataset: Path, tmp_path: Path) -> None:
    source = tmp_path / "ds"
    hidden = copy_hiding_referents(tiny_dataset, source, {0: [0, 4], 1: [8]})
    default = export_hf(source, tmp_path / "visible", views="all", splits=["train"])
    every = export_hf(source, tmp_path / "every", views="all", splits=["train"], include_hidden=True)
    assert default["splits"]["train"]["rows"] == len(RefDataset(source, "train", views="all"))
    assert every["splits"]["train"]["rows"] == len(RefDataset(source, "train", views="all", visible_only=False))
    assert every["splits"]["train"]["hidden"] == every["splits"]["train"]["rows"] - default["splits"]["train"]["rows"] >= 3
    rows = load(hf, tmp_path / "every", split="train").select_columns(["ref_id", "view", "visible"])
    off = {(r["ref_id"], r["view"]) for r in rows if not r["visible"]}
    assert {(hidden[0], 0), (hidden[0], 4), (hidden[1], 8)} <= off
    shown = load(hf, tmp_path / "visible", split="train").select_columns(["ref_id", "view"])
    assert not off & {(r["ref_id"], r["view"]) for r in shown}


def test_the_output_folder_holds_card_summary_and_data(hf, hf_all: Path) -> None:
    import yaml

    card = (hf_all / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    info = meta["dataset_info"]
    loaded = load(hf, hf_all)
    assert hf.Features._from_yaml_list(info["features"]) == loaded["train"].features
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {s: len(loaded[s]) for s in SPLITS}
    assert [c["path"] for c in meta["configs"][0]["data_files"]] == [f"data/{s}-*.parquet" for s in SPLITS]
    assert "`visible_fraction`" in card and "views 0, 1, 2, 3, 4, 5, 6, 7, 8" in card
    summary = json.loads((hf_all / "export.json").read_text())
    assert summary["format"] == "hf" and summary["views"] == list(range(9))
    assert "/" not in summary["source"] and summary["out"] == "."  # no local path in what is published
    assert summary["parquet"]["row_group_rows"] == ROW_GROUP_ROWS
    assert summary["splits"]["test"]["rows"] == 0 and summary["parquet"]["files"]["test"] == []
    assert sorted(p.name for p in (hf_all / "data").iterdir()) == [
        "train-00000-of-00001.parquet", "val-00000-of-00001.parquet"]
    digest = hashlib.sha256()  # every file's path and bytes, in split order: what `datasets` hashes
    for name in ("data/train-00000-of-00001.parquet", "data/val-00000-of-00001.parquet"):
        digest.update(f"{name}\0".encode() + (hf_all / name).read_bytes())
    assert summary["parquet"]["sha256"] == digest.hexdigest()
    assert info["description"].endswith(f"SHA-256 of the data files: {digest.hexdigest()}")
    assert loaded["train"].info.description == info["description"]


@pytest.mark.parametrize("args, code, message", [
    (["--views", "9"], 1, "Error: view 9 is outside the 3x3 rig"),
    (["--splits", "train,dev"], 1, "Error: split 'dev' not in"),
    (["--max-file-size", "lots"], 2, "Error: Invalid value for '--max-file-size': 'lots': give a positive size"),
    (["--max-file-size", "0MB"], 2, "Error: Invalid value for '--max-file-size': '0MB'"),
])
def test_bad_options_fail_in_one_line(tiny_dataset: Path, tmp_path: Path, args: list[str], code: int,
                                      message: str) -> None:
    result = export(str(tiny_dataset), "--out", str(tmp_path / "out"), *args)
    assert result.exit_code == code and result.output.strip().splitlines()[-1].startswith(message), result.output
    assert not (tmp_path / "out").exists()


def test_an_export_without_a_single_row_fails_and_writes_nothing(tiny_dataset: Path, tmp_path: Path) -> None:
    """Every referent hidden in the chosen view: no Parquet file at all, an OUT load_dataset cannot read."""
    import shutil

    source = Path(shutil.copytree(tiny_dataset, tmp_path / "ds"))
    for path in DatasetReader(source).shard_paths("train"):
        with h5py.File(path, "r+") as f:
            visible = f["refs/visible"][()]
            visible[:, 0] = False
            f["refs/visible"][...] = visible
    result = export(str(source), "--out", str(tmp_path / "out"), "--splits", "train", "--views", "0")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: nothing to export: train in views 0 hold no (pair, view) whose referent is visible "
        "(--include-hidden exports hidden ones)")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    result = export(str(source), "--out", str(tmp_path / "out"), "--splits", "train", "--views", "0",
                    "--include-hidden")
    assert result.exit_code == 0, result.output


def test_non_empty_out_is_refused(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = export(str(tiny_dataset), "--out", str(out))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == f"Error: --out {out} is not empty (pass --overwrite to replace it)"
    assert (out / "keep.txt").read_text() == "mine"


def test_without_pyarrow_it_names_the_extra(tiny_dataset: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    result = export(str(tiny_dataset), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output.splitlines() == ["Error: export hf needs pyarrow: pip install 'clevr-remv[hf]'"]
    assert not (tmp_path / "out").exists()


def test_a_new_export_into_the_same_folder_loads_its_new_sentences(hf, tiny_dataset: Path, tmp_path: Path) -> None:
    """The docs' sequence: edit a template, `expressions`, `export hf --overwrite` into the same folder,
    `load_dataset(OUT)`. "Point to" -> "Point at" keeps every size: `datasets` keyed its cache on a card
    that did not change and served the first export's rows; the card now names the files' digest."""
    import shutil

    from clevr_remv.expressions import load_templates

    dataset, templates, out = tmp_path / "dataset", tmp_path / "templates", tmp_path / "hf"
    shutil.copytree(tiny_dataset, dataset)
    shutil.copytree(load_templates().root, templates)
    assert export(str(dataset), "--out", str(out), "--views", "all").exit_code == 0
    before = load(hf, out)["train"]["sentence"]
    card = (out / "README.md").read_text(encoding="utf-8")
    zero_hop = templates / "zero_hop.json"
    zero_hop.write_text(zero_hop.read_text(encoding="utf-8").replace("Point to", "Point at"), encoding="utf-8")
    result = CliRunner().invoke(main, ["expressions", str(dataset), "--templates", str(templates)])
    assert result.exit_code == 0, result.output
    result = export(str(dataset), "--out", str(out), "--views", "all", "--overwrite")
    assert result.exit_code == 0, result.output
    expected = [s["sentence"] for s in RefDataset(dataset, "train", views="all")]
    changed = [(a, b) for a, b in zip(before, expected) if a != b]
    assert changed and all(a.replace("Point to", "Point at") == b for a, b in changed)  # the test's premise
    assert pq.read_table(sorted((out / "data").glob("train-*.parquet"))[0]).column("sentence").to_pylist() == expected
    assert load(hf, out)["train"]["sentence"] == expected
    assert (out / "README.md").read_text(encoding="utf-8") != card


def test_targets_and_union_masks_of_sentences_that_name_several_objects_or_none(hf, harder_dataset: Path,
                                                                                tmp_path: Path) -> None:
    """--targets any: `targets` lists the named objects ([] for none), `mask` is their union as RefDataset's
    (empty for none, with pycocotools' empty box [0, 0, 0, 0]), `object` is 0 and the referent's attributes
    null unless there is exactly one."""
    out = tmp_path / "hf"
    result = export(str(harder_dataset), "--out", str(out), "--views", "all", "--splits", "train,val")
    assert result.exit_code == 0, result.output
    loaded = load(hf, out)
    kinds = set()
    for split in ("train", "val"):
        ref, rows = RefDataset(harder_dataset, split, views="all"), loaded[split]
        assert len(rows) == len(ref) > 0
        for i, row in enumerate(rows):
            sample = ref[i]
            assert (row["ref_id"], row["view"], row["sentence"]) == (
                sample["ref_id"], sample["view"], sample["sentence"])
            assert row["targets"] == sample["targets"] and row["object"] == sample["object"]
            mask = np.asarray(row["mask"])
            np.testing.assert_array_equal(mask, sample["mask"])
            assert row["bbox"] == (box(sample["mask"]) or [0, 0, 0, 0])  # pycocotools' box of an empty mask
            one = sample["target_count"] == 1
            assert (row["shape"] is not None) == one and (row["color"] is not None) == one
            if sample["target_count"] == 0:
                assert row["targets"] == [] and not mask.any() and row["bbox"] == [0, 0, 0, 0] and row["visible"]
            kinds.add(min(sample["target_count"], 2))
    assert kinds == {0, 1, 2}
