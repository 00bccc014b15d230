"""RefDataset: samples equal the shards, views are chosen and checked, reading is lazy and
the dataset works in worker processes under fork and spawn."""

from __future__ import annotations

import multiprocessing
import operator
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import copy_hiding_referents, need
from hypothesis import given
from hypothesis import strategies as st

from clevr_remv import RefDataset
from clevr_remv.data.selection import select_views
from clevr_remv.scene.description import Scene
from clevr_remv.store import DatasetReader


def shard_refs(root: Path, split: str) -> list[tuple[str, dict]]:
    """(shard path, ref dict) for every pair of the split, straight from the files."""
    reader = DatasetReader(root)
    out = []
    for path in reader.shard_paths(split):
        with h5py.File(path, "r") as f:
            scenes = [Scene.from_json(s) for s in f["scenes"].asstr()[()]]
            g = f["refs"]
            for k in range(g["id"].shape[0]):
                row = int(g["scene"][k])
                out.append((str(path), {
                    "id": int(g["id"][k]), "row": row, "object": int(g["object"][k]),
                    "sentence": g["expression"].asstr()[k], "visible": g["visible"][k],
                    "scene": scenes[row].index,
                }))
    return out


def test_every_sample_equals_its_shard(tiny_dataset: Path) -> None:
    ds = RefDataset(tiny_dataset, "train", views="all", visible_only=False)
    refs = shard_refs(tiny_dataset, "train")
    assert len(ds) == len(refs) * 9
    seen = set()
    for i in range(len(ds)):
        s = ds[i]
        path, ref = next((p, r) for p, r in refs if r["id"] == s["ref_id"])  # ref_id: the split's refs/id
        with h5py.File(path, "r") as f:
            np.testing.assert_array_equal(s["image"], f["images"][ref["row"], s["view"]])
            np.testing.assert_array_equal(s["mask"], f["masks"][ref["row"], s["view"]] == ref["object"])
        assert s["image"].shape == (48, 64, 3) and s["image"].dtype == np.uint8
        assert s["mask"].shape == (48, 64) and s["mask"].dtype == bool
        assert (s["sentence"], s["object"], s["scene"], s["row"], s["shard"]) == (
            ref["sentence"], ref["object"], ref["scene"], ref["row"], path)
        seen.add((s["ref_id"], s["view"]))
    assert len(seen) == len(ds)  # every (pair, view) exactly once


def test_centre_is_the_default_and_masks_are_not_empty(tiny_dataset: Path) -> None:
    ds = RefDataset(tiny_dataset, "train")
    assert ds.views == [4] and {ds[i]["view"] for i in range(len(ds))} == {4}
    assert all(ds[i]["mask"].any() for i in range(len(ds)))  # visible referents only


def test_view_selections(tiny_dataset: Path) -> None:
    corners = RefDataset(tiny_dataset, "train", views="corners")
    assert corners.views == [0, 2, 6, 8]
    assert sorted({corners[i]["view"] for i in range(len(corners))}) == [0, 2, 6, 8]
    listed = RefDataset(tiny_dataset, "val", views=[1, 3])
    assert sorted({listed[i]["view"] for i in range(len(listed))}) == [1, 3]
    assert RefDataset(tiny_dataset, "val", views="3,5").views == [3, 5]


@pytest.mark.parametrize("views, message", [
    (9, "outside the 3x3 rig"), ([-1], "outside the 3x3 rig"), ("middle", "expected center, corners"),
    ([4, 4], "listed twice"), ([], "no view"), ("1,,2", "expected center, corners"), ("0,", "expected center"),
])
def test_bad_views_fail_in_one_line(tiny_dataset: Path, views, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        RefDataset(tiny_dataset, "train", views=views)
    assert "\n" not in str(info.value)


def test_unknown_split_fails(tiny_dataset: Path) -> None:
    with pytest.raises(ValueError, match="split 'dev' not in"):
        RefDataset(tiny_dataset, "dev")


@given(st.integers(1, 15).map(lambda n: 2 * n + 1))
def test_named_views_of_any_rig(grid: int) -> None:
    n = grid * grid
    assert select_views("center", grid) == [n // 2]
    corners = select_views("corners", grid)
    assert sorted(corners) == [0, grid - 1, n - grid, n - 1]
    assert [divmod(v, grid) for v in corners] == [(0, 0), (0, grid - 1), (grid - 1, 0), (grid - 1, grid - 1)]
    assert select_views("all", grid) == list(range(n))


def test_invisible_pairs_are_dropped_unless_asked(tiny_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    # pair 0 hidden at a corner and at the centre, pair 3 at another corner
    hidden_id = copy_hiding_referents(tiny_dataset, root, {0: [0, 4], 3: [8]})[0]
    pairs = len(shard_refs(root, "train"))
    ds = RefDataset(root, "train", views="all")
    assert len(ds) == pairs * 9 - 3
    assert (hidden_id, 0) not in {(ds[i]["ref_id"], ds[i]["view"]) for i in range(len(ds))}
    assert len(RefDataset(root, "train", views="all", visible_only=False)) == pairs * 9
    centre = RefDataset(root, "train")
    assert hidden_id not in {centre[i]["ref_id"] for i in range(len(centre))}


def test_one_sample_reads_one_view_chunk(tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[str, object]] = []
    original = h5py.Dataset.__getitem__

    def spy(self, key, *args, **kwargs):
        reads.append((self.name, key))
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    ds = RefDataset(tiny_dataset, "train", views="all")
    assert not [name for name, _ in reads if name in ("/images", "/masks", "/depth")]
    reads.clear()
    s = ds[len(ds) - 1]
    pixel_reads = [(name, key) for name, key in reads if name in ("/images", "/masks", "/depth")]
    assert pixel_reads == [("/images", (s["row"], s["view"])), ("/masks", (s["row"], s["view"]))]
    with h5py.File(s["shard"], "r") as f:  # and such a key is exactly one chunk
        assert f["images"].chunks[:2] == (1, 1) and f["masks"].chunks[:2] == (1, 1)


def test_pickles_without_handles_and_applies_transform(tiny_dataset: Path) -> None:
    ds = RefDataset(tiny_dataset, "train", transform=lambda s: (s["sentence"], int(s["mask"].sum())))
    first = ds[0]  # opens a handle; pickling must still work
    ds.transform = None
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._files == {}
    assert (copy[0]["sentence"], int(copy[0]["mask"].sum())) == first


def test_import_does_not_load_h5py() -> None:
    code = ("import sys, clevr_remv; assert 'h5py' not in sys.modules; "
            "from clevr_remv.data.dataset import RefDataset; assert clevr_remv.RefDataset is RefDataset; "
            "assert 'h5py' not in sys.modules; assert not hasattr(clevr_remv, 'NoSuchName')")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_processes_yield_the_same_samples(tiny_dataset: Path, method: str) -> None:
    ds = RefDataset(tiny_dataset, "train", views="all")
    ds[0]  # the parent holds open handles before the workers start
    expected = [ds[i] for i in range(len(ds))]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        got = list(pool.map(operator.getitem, [ds] * len(ds), range(len(ds)), chunksize=8))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_the_torch_example_runs(tiny_dataset: Path) -> None:
    need("torch", "the train extra: pip install -e '.[train]'")  # optional: clevr-remv does not depend on it
    example = Path(__file__).parent.parent / "examples" / "train_loader.py"
    result = subprocess.run([sys.executable, str(example), str(tiny_dataset), "--views", "corners", "--workers", "2"],
                            capture_output=True, text=True, check=True)
    pairs = len(shard_refs(tiny_dataset, "train"))
    assert f"{pairs * 4} samples in" in result.stdout and "image (8, 3, 48, 64) torch.float32" in result.stdout


def test_the_documented_example_runs(tiny_dataset: Path, capsys: pytest.CaptureFixture) -> None:
    """The first example of docs/training.md's "The loader" prints the split's pair count first."""
    page = (Path(__file__).parent.parent / "docs" / "training.md").read_text(encoding="utf-8")
    section = page.split("## The loader", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(code.replace('"out"', repr(str(tiny_dataset))), {})
    pairs = len(shard_refs(tiny_dataset, "train"))
    assert capsys.readouterr().out.startswith(f"{pairs} ")
