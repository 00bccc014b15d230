"""One read path: the shards are read through `clevr_remv.store` alone.

Outside store/, no module spells an HDF5 dataset name (the names come from store/columns.py and
are checked here on the source), and the referring pairs come as one `RefTable` whose missing
visible fraction (datasets before schema 3) is one value: NaN, with `measured_fraction` False.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import run_cli

from clevr_remv.store import DatasetReader, RefTable, ShardReader, columns
from clevr_remv.store.refs import concatenate
from clevr_remv.store.shard import ALL_DATASETS, AMODAL_MASKS
from clevr_remv.store.split_files import split_file_path

PACKAGE = Path(__file__).resolve().parents[1] / "clevr_remv"
STORE = PACKAGE / "store"

# The names, from store's own constants: every dataset, the groups, and the names inside the groups
# (`g = f["refs"]; g["visible"]` spells refs/visible as surely as f["refs/visible"] does).
DATASETS = set(columns.COLUMNS)
GROUPS = {name.split("/")[0] for name in DATASETS if "/" in name}
LEAVES = {name.split("/", 1)[1] for name in DATASETS if "/" in name}
PREFIXES = tuple(f"{group}/" for group in GROUPS)
KEYS = DATASETS | GROUPS | LEAVES
# What an HDF5 dataset or group is used for after its lookup: `f[name][row]` is caught as a subscript;
# these attributes catch `f[name].asstr()`, `f[name].shape` and the like.
H5_ATTRIBUTES = {"asstr", "shape", "dtype", "attrs", "chunks", "compression", "fletcher32", "maxshape",
                 "iter_chunks", "read_direct", "id", "name", "len", "fields", "keys", "items", "values"}
H5_METHODS = {"create_dataset", "require_dataset", "create_group", "require_group", "create_virtual_dataset",
              "VirtualSource"}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants: prose may name a dataset."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _key(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _used_as_hdf5(node: ast.Subscript, parents: dict[int, ast.AST]) -> bool:
    """`X["name"]` read on as a dataset or group: subscripted again, or one of H5_ATTRIBUTES taken;
    or looked up in what a call returned (`open_shard(path)["masks"]`)."""
    if isinstance(node.value, ast.Call):
        return True
    parent = parents.get(id(node))
    if isinstance(parent, ast.Subscript) and parent.value is node:
        return True
    return isinstance(parent, ast.Attribute) and parent.attr in H5_ATTRIBUTES


def hdf5_names_spelled(source: str) -> list[str]:
    """Where `source` spells a shard dataset as an HDF5 key: "line: what" for each place."""
    tree = ast.parse(source)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
            if text.startswith(PREFIXES) and not any(c.isspace() for c in text):  # a key, not prose
                found.append(f"{node.lineno}: {text!r}")
        elif isinstance(node, ast.Subscript) and _key(node.slice) in KEYS and _used_as_hdf5(node, parents):
            found.append(f"{node.lineno}: [{_key(node.slice)!r}]")
        elif (isinstance(node, ast.Compare) and _key(node.left) in KEYS
              and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)):
            found.append(f"{node.lineno}: {_key(node.left)!r} in ...")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in H5_METHODS:
            found += [f"{node.lineno}: {_key(a)!r} created" for a in node.args if _key(a) in KEYS]
        elif isinstance(node, ast.Dict):  # a table of names to read: {"image": "images", ...}
            found += [f"{node.lineno}: {_key(v)!r} in a dict" for v in node.values if _key(v) in DATASETS]
    return found


def _modules_outside_store() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if STORE not in p.parents)


def test_the_names_come_from_store() -> None:
    """store/columns.py names every dataset the writer writes (the optional amodal masks too)."""
    assert set(ALL_DATASETS) | {AMODAL_MASKS} == DATASETS
    assert GROUPS == {"refs", "cameras"} and "visible_fraction" in LEAVES


def test_no_module_outside_store_spells_a_dataset_name() -> None:
    spelled = {str(path.relative_to(PACKAGE.parent)): hdf5_names_spelled(path.read_text(encoding="utf-8"))
               for path in _modules_outside_store()}
    assert {path: places for path, places in spelled.items() if places} == {}


def test_the_check_sees_every_way_of_spelling_one() -> None:
    """The negative control: the ways the consumers used to read the shards are all seen."""
    spelled = [
        'visible = f["refs/visible"][()]',
        'g = f["refs"]\nrows = g["scene"][()]',
        'fraction = g["visible_fraction"][()] if "visible_fraction" in g else None',
        'texts = f["scenes"].asstr()[()]',
        '_, views, height, width = f["masks"].shape',
        'image = f["images"][row, view]',
        'if "amodal_masks" not in f:\n    pass',
        'name = f"refs/{leaf}"',
        'K = "cameras/intrinsics"',
        'f.create_dataset("depth", data=x)',
        'masks = stack.enter_context(open_shard(path, root))["masks"]',
        'names = {"image": "images", "mask": "masks"}',
    ]
    for source in spelled:
        assert hdf5_names_spelled(source), source
    clean = [
        '"""Reads refs/visible per view."""',
        'out["images"].append(record)',
        'sample["depth"] = pixels["depth"]',
        'summary = s.get("visible_fraction")',
        'raise ValueError(f"refs/id {pair} too large")',
        'n = len(f["images"])',
    ]
    for source in clean:
        assert hdf5_names_spelled(source) == [], source


# ---------------------------------------------------------------------------- the refs table


def _raw(path: Path) -> dict[str, np.ndarray]:
    """The refs datasets as h5py reads them, for comparison."""
    with h5py.File(path, "r") as f:
        names = [f"refs/{leaf}" for leaf in f["refs"]]
        return {name: f[name].asstr()[()] if h5py.check_string_dtype(f[name].dtype) else f[name][()]
                for name in names}


def _schema2_copy(source: Path, dest: Path, splits: tuple[str, ...] = ("train", "val", "test")) -> Path:
    """A copy of the dataset whose shards and split files of `splits` have no refs/visible_fraction,
    as schema 2 wrote them (the attributes are left as they are: readers look for the dataset)."""
    shutil.copytree(source, dest)
    reader = DatasetReader(dest)
    for split in splits:
        for path in [*reader.shard_paths(split), split_file_path(dest, split)]:
            with h5py.File(path, "r+") as f:
                del f["refs/visible_fraction"]
    return dest


def _same_column(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype == object or b.dtype == object:
        return a.dtype == b.dtype and a.tolist() == b.tolist()
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


COLUMNS = ("id", "scene", "object", "expression", "family", "program", "visible", "visible_fraction")


def test_ref_table_holds_every_refs_dataset(tiny_dataset: Path) -> None:
    path = DatasetReader(tiny_dataset).shard_paths("train")[0]
    raw = _raw(path)
    with ShardReader(path) as shard:
        table = shard.ref_table()
        views = shard.num_views
    assert isinstance(table, RefTable) and table.measured_fraction and len(table) == len(raw["refs/id"]) > 0
    expected = {"id": np.int64, "scene": np.int32, "object": np.int16, "visible": np.bool_,
                "visible_fraction": np.float32}
    for name, dtype in expected.items():
        assert getattr(table, name).dtype == dtype, name
        assert np.array_equal(getattr(table, name), raw[f"refs/{name}"], equal_nan=dtype == np.float32), name
    for name in ("expression", "family", "program"):
        assert getattr(table, name).tolist() == raw[f"refs/{name}"].tolist()
        assert all(isinstance(text, str) for text in getattr(table, name))
    assert table.visible.shape == table.visible_fraction.shape == (len(table), views) and table.num_views == views


def test_a_split_reads_as_its_split_file(tiny_dataset: Path) -> None:
    """DatasetReader.ref_table (the shards, concatenated) is the split file's copy of the refs."""
    reader = DatasetReader(tiny_dataset)
    for split in reader.splits:
        whole = reader.ref_table(split)
        with ShardReader(split_file_path(tiny_dataset, split)) as f:
            copy = f.ref_table()
        assert all(_same_column(getattr(whole, name), getattr(copy, name)) for name in COLUMNS), split
        assert whole.measured_fraction and len(whole) == reader.manifest["splits"][split]["pairs"]
        assert whole.visible.shape == (len(whole), reader.manifest["views"])  # an empty split too


def test_refs_dicts_are_the_table_by_rows(tiny_dataset: Path) -> None:
    with ShardReader(DatasetReader(tiny_dataset).shard_paths("train")[0]) as shard:
        table, rows = shard.ref_table(), shard.refs()
    assert [r["id"] for r in rows] == table.id.tolist()
    assert [r["expression"] for r in rows] == table.expression.tolist()
    assert all(np.array_equal(r["visible_fraction"], f, equal_nan=True) for r, f in zip(rows, table.visible_fraction))


def test_a_missing_visible_fraction_is_nan_and_not_measured(tiny_dataset: Path, tmp_path: Path) -> None:
    old = _schema2_copy(tiny_dataset, tmp_path / "old")
    for split in DatasetReader(old).splits:
        new, before = DatasetReader(tiny_dataset).ref_table(split), DatasetReader(old).ref_table(split)
        assert before.measured_fraction == (not DatasetReader(old).shard_paths(split))  # no shard: nothing missing
        assert before.visible_fraction.dtype == np.float32 and before.visible_fraction.shape == new.visible.shape
        assert np.isnan(before.visible_fraction).all()
        assert before.id.tolist() == new.id.tolist() and np.array_equal(before.visible, new.visible)
    with ShardReader(DatasetReader(old).shard_paths("train")[0]) as shard:
        assert "visible_fraction" not in shard.refs()[0]  # the documented dicts keep their schema-2 keys


def test_one_part_without_it_makes_the_whole_unmeasured(tiny_dataset: Path, tmp_path: Path) -> None:
    mixed = _schema2_copy(tiny_dataset, tmp_path / "mixed", ("train",))
    reader = DatasetReader(mixed)
    train, val = reader.ref_table("train"), reader.ref_table("val")
    assert not train.measured_fraction and val.measured_fraction
    both = concatenate([val, train], offsets=[0, 100])
    assert not both.measured_fraction and len(both) == len(val) + len(train)
    assert np.isnan(both.visible_fraction[len(val):]).all()
    assert np.array_equal(both.visible_fraction[:len(val)], val.visible_fraction, equal_nan=True)
    assert both.scene.tolist() == val.scene.tolist() + (train.scene + 100).tolist()
    result = run_cli("stats", str(mixed), "--out", str(tmp_path / "stats"), "--no-progress", "--no-figures")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "stats" / "stats.json").read_text())["splits"]
    assert report["train"]["visible_fraction"] is None and report["val"]["visible_fraction"] is not None


def test_the_loader_evaluate_and_stats_on_a_schema2_copy(tiny_dataset: Path, tmp_path: Path) -> None:
    from clevr_remv import RefDataset

    old = _schema2_copy(tiny_dataset, tmp_path / "old")
    new_samples, old_samples = RefDataset(tiny_dataset, "train", views="all"), RefDataset(old, "train", views="all")
    assert len(new_samples) == len(old_samples) > 0
    for i in range(len(old_samples)):
        a, b = new_samples[i], old_samples[i]
        assert np.isnan(b["visible_fraction"]) and 0 < a["visible_fraction"] <= 1
        assert (a["sentence"], a["ref_id"], a["view"]) == (b["sentence"], b["ref_id"], b["view"])
        assert np.array_equal(a["mask"], b["mask"]) and np.array_equal(a["image"], b["image"])
    lightfield = RefDataset(old, "train", views="corners", sample="lightfield")[0]
    assert lightfield["visible_fraction"].shape == (4,) and np.isnan(lightfield["visible_fraction"]).all()

    outputs = []
    for root in (tiny_dataset, old):
        result = run_cli("evaluate", str(root), "--split", "train", "--baseline", "centre-mask", "--no-progress")
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs[0] == outputs[1]
    result = run_cli("evaluate", str(old), "--split", "train", "--baseline", "oracle", "--by", "occlusion",
                     "--no-progress")
    assert result.exit_code == 1
    assert "has no refs/visible_fraction (rendered before schema version 3)" in result.output

    reports = []
    for root, name in ((tiny_dataset, "new"), (old, "old")):
        result = run_cli("stats", str(root), "--out", str(tmp_path / name), "--no-progress", "--no-figures")
        assert result.exit_code == 0, result.output
        reports.append(json.loads((tmp_path / name / "stats.json").read_text()))
    new_train, old_train = reports[0]["splits"]["train"], reports[1]["splits"]["train"]
    assert new_train["visible_fraction"] is not None and old_train["visible_fraction"] is None
    assert {k: v for k, v in old_train.items() if k != "visible_fraction"} == \
        {k: v for k, v in new_train.items() if k != "visible_fraction"}


@pytest.mark.parametrize("fields", [("image", "mask"), ("depth",)])
def test_view_reads_only_the_fields_asked_for(tiny_dataset: Path, fields: tuple[str, ...]) -> None:
    with ShardReader(DatasetReader(tiny_dataset).shard_paths("train")[0]) as shard:
        full, some = shard.view(0, 1), shard.view(0, 1, fields)
        assert list(some) == list(fields)
        assert all(np.array_equal(some[k], full[k]) for k in fields)
        assert np.array_equal(shard.mask(0, 1), full["mask"])
        assert np.array_equal(shard.all_views(0, "masks")[1], full["mask"])
        assert shard.shape == (len(shard), shard.num_views, *shard.image_size)
