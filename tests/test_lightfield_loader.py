"""Light-field samples in the loader (issue #17 item 5): one sample per pair with the chosen views
stacked, optional depth and disparity in both modes, and the same laziness and fork/spawn safety."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest

from clevr_remv import RefDataset
from clevr_remv.data import read_disparity
from clevr_remv.store import DatasetReader


def test_lightfield_samples_stack_the_chosen_views_of_each_pair(lightfield_dataset: Path) -> None:
    ds = RefDataset(lightfield_dataset, "train", views=[4, 0, 8], sample="lightfield", disparity=True)
    path = DatasetReader(lightfield_dataset).shard_paths("train")[0]
    with h5py.File(path) as f:
        pairs = int(f["refs/id"].shape[0])
        first = ds[0]
        row, obj = int(f["refs/scene"][0]), int(f["refs/object"][0])
        assert first["ref_id"] == int(f["refs/id"][0]) and first["object"] == obj
        assert first["image"].shape == (3, 80, 120, 3) and first["mask"].shape == (3, 80, 120)
        for k, view in enumerate([4, 0, 8]):
            np.testing.assert_array_equal(first["image"][k], f["images"][row, view])
            np.testing.assert_array_equal(first["mask"][k], f["masks"][row, view] == obj)
        np.testing.assert_array_equal(first["visible"], f["refs/visible"][0][[4, 0, 8]])
    assert first["views"] == [4, 0, 8] and "view" not in first and "depth" not in first
    scene = int(first["scene"])
    np.testing.assert_array_equal(first["disparity"], read_disparity(lightfield_dataset, "train", scene, [4, 0, 8]))
    total = sum(int(h5py.File(p)["refs/id"].shape[0]) for p in DatasetReader(lightfield_dataset).shard_paths("train"))
    assert len(ds) == total and pairs < total  # one sample per pair (each is seen in the centre view)
    assert "sample='lightfield'" in repr(ds) and "disparity=True" in repr(ds)


def test_view_samples_gain_depth_and_disparity(lightfield_dataset: Path) -> None:
    plain = RefDataset(lightfield_dataset, "val", views="corners")
    ds = RefDataset(lightfield_dataset, "val", views="corners", depth=True, disparity=True)
    assert len(ds) == len(plain)
    sample, before = ds[5], plain[5]
    assert set(sample) == set(before) | {"depth", "disparity"}
    np.testing.assert_array_equal(sample["image"], before["image"])
    assert sample["depth"].shape == sample["disparity"].shape == (80, 120) and sample["depth"].dtype == np.float32
    np.testing.assert_array_equal(sample["disparity"],
                                  read_disparity(lightfield_dataset, "val", sample["scene"], [sample["view"]])[0])
    with h5py.File(DatasetReader(lightfield_dataset).shard_paths("val")[0]) as f:
        np.testing.assert_array_equal(sample["depth"], f["depth"][sample["row"], sample["view"]])


def test_visible_only_keeps_pairs_seen_in_some_chosen_view(lightfield_dataset: Path, tmp_path: Path) -> None:
    from conftest import copy_hiding_referents

    root = tmp_path / "hidden"
    ids = copy_hiding_referents(lightfield_dataset, root, {0: [0, 8], 1: [0]})
    corners = RefDataset(root, "train", views=[0, 8], sample="lightfield")
    assert ids[0] not in {corners[i]["ref_id"] for i in range(len(corners))}
    both = {corners[i]["ref_id"]: corners[i]["visible"].tolist() for i in range(len(corners))}
    assert both[ids[1]] == [False, True]
    every = RefDataset(root, "train", views=[0, 8], sample="lightfield", visible_only=False)
    assert len(every) == len(corners) + 1


def _first(ds: RefDataset) -> np.ndarray:
    return ds[1]["disparity"]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_lightfield_samples_load_in_worker_processes(lightfield_dataset: Path, method: str) -> None:
    ds = RefDataset(lightfield_dataset, "train", views="all", sample="lightfield", disparity=True)
    here = ds[1]["disparity"]
    assert pickle.loads(pickle.dumps(ds))._files == {}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
        np.testing.assert_array_equal(pool.submit(_first, ds).result(), here)


def test_an_unknown_sample_kind_is_refused(lightfield_dataset: Path) -> None:
    with pytest.raises(ValueError, match="sample 'views': choose 'view' or 'lightfield'"):
        RefDataset(lightfield_dataset, "train", sample="views")


def test_a_pair_prints_in_one_readable_line() -> None:
    """Issue item 7: a Pair printed its 81-element `visible` array."""
    from clevr_remv.data.lightfield_scenes import Pair

    everywhere = Pair(7, 2, "the red cube", "zero_hop", np.ones(81, bool))
    assert repr(everywhere) == "Pair(id=7, object=2, sentence='the red cube', family='zero_hop', visible in all 81 views)"
    few = np.zeros(81, bool)
    few[[3, 40]] = True
    assert repr(Pair(7, 2, "x", "f", few)).endswith("visible in 2 of 81 views (3, 40))")
    many = np.arange(81) % 3 > 0
    text = repr(Pair(7, 2, "x", "f", many))
    assert text.endswith("visible in 54 of 81 views)") and "\n" not in text and "True" not in text


def test_a_light_field_scene_lists_every_target_of_its_pairs(harder_dataset: Path) -> None:
    """With --targets any a pair names one object, several or none: the scene's pairs (and the sentences.json
    the light-field exports write) list them, as refs/targets does."""
    import h5py

    from clevr_remv.data import iter_lightfield_scenes

    seen = set()
    for split in ("train", "val", "test"):
        for scene in iter_lightfield_scenes(harder_dataset, split, what=()):
            for pair in scene.pairs:
                record = pair.record()
                assert record["targets"] == list(pair.targets)
                assert record["object"] == (pair.targets[0] if len(pair.targets) == 1 else 0)
                seen.add(min(len(pair.targets), 2))
        with h5py.File(harder_dataset / f"{split}.h5") as f:
            stored = sorted(tuple(int(k) + 1 for k in row.nonzero()[0]) for row in f["refs/targets"][()])
        listed = sorted(p.targets for scene in iter_lightfield_scenes(harder_dataset, split, what=()) for p in scene.pairs)
        assert listed == stored
    assert seen == {0, 1, 2}
