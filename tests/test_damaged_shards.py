"""A damaged or missing shard is one line naming the file and `clevr-remv verify`, from every command
that reads shards and from `RefDataset` (issue #15, item 3).

Each test damages its own copy of the session's tiny dataset: train/shard-00000.h5 holds train
scenes 0-1 of a 3x3 rig, so pixel chunk 13 is scene row 1, view 4.
"""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from test_verify import (
    flip_byte_in_chunk,  # through its file offset (h5py's get_chunk_info)
)

from clevr_remv import RefDataset
from clevr_remv.contract import DamagedShard
from clevr_remv.store import ShardReader

SHARD = "train/shard-00000.h5"
CHUNK = 13  # scene row 1, view 4


def damage(out: Path, how: str) -> Path:
    """Damage the first train shard of `out` and return its path."""
    path = out / SHARD
    if how == "flipped":
        for dataset in ("images", "masks"):
            flip_byte_in_chunk(path, dataset, CHUNK)
    elif how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    else:
        raise AssertionError(how)
    return path


@pytest.fixture
def copy(tiny_dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_dataset, tmp_path / "out"))


def command_line(name: str, out: Path, tmp_path: Path) -> list[str]:
    return {
        "show": ["show", str(out), "--split", "train", "--scene", "1", "--out", str(tmp_path / "scene.png")],
        "evaluate": ["evaluate", str(out), "--split", "train", "--baseline", "oracle", "--views", "all",
                     "--no-progress"],
        "export coco": ["export", "coco", str(out), "--out", str(tmp_path / "coco"), "--views", "all",
                        "--no-progress"],
        "export refcoco --workers 2": ["export", "refcoco", str(out), "--out", str(tmp_path / "refcoco"),
                                       "--views", "all", "--workers", "2", "--no-progress"],
        "stats": ["stats", str(out), "--out", str(tmp_path / "figs"), "--no-figures", "--no-progress"],
        "expressions": ["expressions", str(out)],
    }[name]


def assert_names_the_shard(result, path: Path) -> None:
    """Exit 1 and a single `Error:` line, the last, naming the shard and `clevr-remv verify`."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and result.output.rstrip("\n").splitlines()[-1] == errors[0], result.output
    assert str(path) in errors[0] and "clevr-remv verify" in errors[0], errors[0]
    assert "Traceback" not in result.output


# stats reads no pixel chunk, so a flipped pixel byte is not its to find; expressions copies the
# chunks into its new shards, so it checks their checksums first (issue item 8).
CASES = [(command, how) for command in ("show", "evaluate", "export coco", "export refcoco --workers 2",
                                        "expressions")
         for how in ("flipped", "missing", "truncated")]
CASES += [("stats", how) for how in ("missing", "truncated")]


@pytest.mark.parametrize("command, how", CASES)
def test_a_command_names_the_damaged_shard_and_verify(command: str, how: str, copy: Path, tmp_path: Path) -> None:
    path = damage(copy, how)
    result = run_cli(*command_line(command, copy, tmp_path))
    assert_names_the_shard(result, path)
    assert not (tmp_path / "scene.png").exists() and not (tmp_path / "coco").exists()
    assert not (tmp_path / "refcoco").exists()


def test_the_error_says_what_failed_to_read(copy: Path, tmp_path: Path) -> None:
    path = damage(copy, "flipped")
    result = run_cli(*command_line("evaluate", copy, tmp_path))
    assert_names_the_shard(result, path)
    assert "masks[1, 4]" in result.output and f"clevr-remv verify {copy}`" in result.output


@pytest.mark.parametrize("dataset, chunk, where", [("images", CHUNK, "images[1, 4]"), ("depth", 0, "depth[0, 0]"),
                                                   ("masks", 17, "masks[1, 8]")])
def test_expressions_names_the_chunk_it_would_copy_and_changes_nothing(dataset: str, chunk: int, where: str,
                                                                        copy: Path, tmp_path: Path) -> None:
    """`expressions` copies the pixel chunks without decoding them: a damaged one is refused, not carried over."""
    path = copy / SHARD
    flip_byte_in_chunk(path, dataset, chunk)
    before = {p: p.read_bytes() for p in sorted(copy.rglob("*")) if p.is_file()}
    result = run_cli(*command_line("expressions", copy, tmp_path))
    assert_names_the_shard(result, path)
    assert f"({where} fails its checksum)" in result.output
    assert {p: p.read_bytes() for p in sorted(copy.rglob("*")) if p.is_file()} == before


def test_ref_dataset_raises_damaged_shard_for_a_missing_shard(copy: Path) -> None:
    path = damage(copy, "missing")
    with pytest.raises(DamagedShard, match="clevr-remv verify") as info:
        RefDataset(copy, "train")
    assert info.value.path == path and str(path) in str(info.value)


def _sample_in_the_damaged_view(dataset: RefDataset) -> int:
    return next(i for i in range(len(dataset))
                if dataset.shards[dataset._shard[i]].endswith(SHARD) and dataset._row[i] == 1
                and dataset._view[i] == 4)


def test_ref_dataset_raises_damaged_shard_for_a_bad_chunk(copy: Path) -> None:
    path = damage(copy, "flipped")
    dataset = RefDataset(copy, "train", views="all")  # reads only the small refs
    with pytest.raises(DamagedShard, match="clevr-remv verify") as info:
        dataset[_sample_in_the_damaged_view(dataset)]
    assert info.value.path == path
    dataset[0]  # another view of the same shard still reads


def _read_sample(dataset: RefDataset, i: int) -> int:
    return len(dataset[i]["sentence"])


def test_ref_dataset_raises_damaged_shard_in_a_worker_process(copy: Path) -> None:
    """As in a DataLoader worker: the child opens its own handle, fails, and the exception travels
    back pickled, arriving as DamagedShard with its path."""
    path = damage(copy, "flipped")
    dataset = RefDataset(copy, "train", views="all")
    i = _sample_in_the_damaged_view(dataset)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_read_sample, (dataset, 0)) > 0
        with pytest.raises(DamagedShard, match="clevr-remv verify") as info:
            pool.apply(_read_sample, (dataset, i))
    assert info.value.path == path


@pytest.mark.parametrize("how", ["flipped", "missing"])
def test_reading_through_the_split_file_names_the_shard_behind_the_row(how: str, copy: Path) -> None:
    """train.h5 is virtual datasets over the shards: a bad chunk fails there, and a missing shard
    (which HDF5 reads as zeros) is refused instead of returning a black view."""
    path = damage(copy, how)
    with ShardReader(copy / "train.h5") as split:
        with pytest.raises(DamagedShard, match="clevr-remv verify") as info:
            split.view(1, 4)
    assert info.value.path == path
