"""The per-split files (`OUT/train.h5` ...): virtual datasets that read exactly what the shards hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_store import ATTRS, GRID, H, V, W, make_refs, make_render

from clevr_remv.store import SCHEMA_VERSION, read_manifest, split_file_path, write_shard
from clevr_remv.store.shard import REF_DATASETS, SCENE_DATASETS
from clevr_remv.store.split_files import write_split_file


def _read(ds: h5py.Dataset) -> np.ndarray:
    return ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]


def assert_split_file_matches_shards(root: Path, split: str, shard_names: list[str]) -> None:
    """Every per-scene dataset is the shards' concatenated; refs likewise, refs/scene moved by the offsets."""
    with h5py.File(split_file_path(root, split), "r") as f:
        shards = [h5py.File(root / name, "r") for name in shard_names]
        try:
            counts = [s["scenes"].shape[0] for s in shards]
            offsets = np.cumsum([0, *counts])[:-1]
            for name in SCENE_DATASETS:
                assert f[name].is_virtual, name
                np.testing.assert_array_equal(_read(f[name]), np.concatenate([_read(s[name]) for s in shards]), err_msg=name)
            for name in REF_DATASETS:
                assert not f[name].is_virtual, name
                parts = [_read(s[name]) + o if name == "refs/scene" else _read(s[name]) for s, o in zip(shards, offsets)]
                np.testing.assert_array_equal(_read(f[name]), np.concatenate(parts), err_msg=name)
            assert f.attrs["shards"].tolist() == shard_names
            assert f.attrs["scene_offsets"].tolist() == offsets.tolist()
            assert f.attrs["scene_count"] == sum(counts) and f.attrs["schema_version"] == SCHEMA_VERSION
            assert f.attrs["split"] == split
        finally:
            for s in shards:
                s.close()


def test_split_file_over_shards_of_different_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    names, index = [], 0
    for shard, size in enumerate((3, 1, 2)):
        renders = [make_render(index + i, rng) for i in range(size)]
        refs = [make_refs(index + i, 1 + i, rng) for i in range(size)]
        name = f"train/shard-{shard:05d}.h5"
        write_shard(tmp_path / name, renders, refs, ATTRS)
        names.append(name)
        index += size
    write_split_file(tmp_path, "train", names, V, H, W)
    assert_split_file_matches_shards(tmp_path, "train", names)
    with h5py.File(split_file_path(tmp_path, "train")) as f:
        assert f["refs/scene"][()].tolist() == [0, 1, 1, 2, 2, 2, 3, 4, 5, 5]
        assert f["images"].shape == (6, GRID * GRID, H, W, 3)
        sources = sorted(s.file_name for s in f["images"].virtual_sources())
    assert sources == names  # relative paths: the directory can move
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train", "train.h5"]  # no temporary left


def test_empty_split_gets_empty_datasets(tmp_path: Path) -> None:
    write_split_file(tmp_path, "test", [], V, H, W)
    with h5py.File(split_file_path(tmp_path, "test")) as f:
        assert f["images"].shape == (0, V, H, W, 3) and f["refs/visible"].shape == (0, V)
        assert f.attrs["scene_count"] == 0 and f.attrs["shards"].tolist() == []


def test_rendered_split_files_read_the_shards(tiny_dataset: Path) -> None:
    manifest = read_manifest(tiny_dataset)
    for split, entry in manifest["splits"].items():
        if entry["shards"]:
            assert_split_file_matches_shards(tiny_dataset, split, entry["shards"])
        with h5py.File(split_file_path(tiny_dataset, split)) as f:
            assert f["scenes"].shape == (entry["scenes"],) and f["refs/id"].shape == (entry["pairs"],)
    # the virtual file holds no pixels: it is far smaller than the images it maps
    with h5py.File(tiny_dataset / "train/shard-00000.h5") as shard:
        image_bytes = shard["images"].id.get_storage_size()
    assert split_file_path(tiny_dataset, "train").stat().st_size < image_bytes / 2


def test_moved_directory_still_reads(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = Path(shutil.copytree(tiny_dataset, tmp_path / "somewhere" / "else"))
    monkeypatch.chdir(tmp_path)  # neither the old place nor the new one
    with h5py.File(moved / "train.h5") as f, h5py.File(moved / "train/shard-00000.h5") as shard:
        np.testing.assert_array_equal(f["images"][1, 4], shard["images"][1, 4])
        np.testing.assert_array_equal(f["masks"][1, 4], shard["masks"][1, 4])
        assert f["images"][1, 4].any()  # a missing source would read as zeros
