"""`clevr-remv verify`: clean data passes; each kind of damage is named; --quarantine and a re-render repair it.

Every test damages its own copy of the session's tiny dataset (train/shard-00000.h5 holds
train scenes 0-1, val/shard-00000.h5 val scene 0, the test split is empty).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY_ARGS, run_cli

from clevr_remv.store import read_manifest, split_file_path
from clevr_remv.store.verify import VerifyReport, quarantine, verify_dataset

TRAIN = "train/shard-00000.h5"
VAL = "val/shard-00000.h5"


@pytest.fixture
def dataset(tiny_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset, to damage."""
    return Path(shutil.copytree(tiny_dataset, tmp_path / "out"))


def verify(out: Path, *options: str):
    return run_cli("verify", str(out), "--no-progress", *options)


def bad_lines(output: str) -> dict[str, str]:
    """'bad: FILE: problems' lines as {FILE: problems}."""
    lines = [line[len("bad: "):] for line in output.splitlines() if line.startswith("bad: ")]
    return dict(line.split(": ", 1) for line in lines)


def flip_byte_in_chunk(path: Path, dataset: str, chunk: int) -> None:
    """Flip one byte in the middle of a stored (compressed) chunk, found by its file offset."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x10]))


def test_clean_dataset_passes(tiny_dataset: Path) -> None:
    result = verify(tiny_dataset)
    assert result.exit_code == 0, result.output
    assert bad_lines(result.output) == {}
    summary = result.output.strip().splitlines()[-1]
    # 2 shards, dataset.json, train.h5, val.h5, test.h5; 3 scenes and their 8 pairs each
    assert summary.startswith("checked 6 files: 0 bad; 3 scenes, 24 pairs, ")


def test_truncated_shard_is_named(dataset: Path) -> None:
    path = dataset / VAL
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    result = verify(dataset)
    assert result.exit_code == 1
    bad = bad_lines(result.output)
    assert list(bad) == [VAL] and "truncated" in bad[VAL]
    assert "checked 6 files: 1 bad" in result.output


def test_flipped_byte_in_an_image_chunk_is_caught_by_its_checksum(dataset: Path) -> None:
    flip_byte_in_chunk(dataset / TRAIN, "images", 13)  # scene 1, view 4 of a 3x3 rig
    result = verify(dataset)
    assert result.exit_code == 1
    bad = bad_lines(result.output)
    assert list(bad) == [TRAIN]
    assert bad[TRAIN].startswith("images[1, 4] unreadable")


def test_wrong_scene_count_is_named(dataset: Path) -> None:
    """A shard whose datasets hold one scene fewer than the plan (all else consistent)."""
    path = dataset / TRAIN
    short = dataset / "short.h5"
    with h5py.File(path, "r") as src, h5py.File(short, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        def copy(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                data = obj[()] if name.startswith("refs/") else obj[:1]
                dst.create_dataset(name, data=data, dtype=obj.dtype, chunks=obj.chunks, fletcher32=obj.fletcher32)
        src.visititems(copy)
    os.replace(short, path)
    result = verify(dataset)
    assert result.exit_code == 1
    bad = bad_lines(result.output)
    assert bad[TRAIN] == "holds 1 scenes, the plan has 2 (every per-scene dataset)"


def test_ref_to_a_missing_object_is_named(dataset: Path) -> None:
    with h5py.File(dataset / VAL, "r+") as f:
        scene = json.loads(f["scenes"].asstr()[0])
        f["refs/object"][2] = len(scene["objects"]) + 1
        pair = int(f["refs/id"][2])
    result = verify(dataset)
    assert result.exit_code == 1
    bad = bad_lines(result.output)
    assert f"refs/object {len(scene['objects']) + 1} of pair {pair} does not exist" in bad[VAL]
    assert "refs/object differs from the shards' refs" in bad["val.h5"]  # the split file's copy no longer matches


def test_manifest_and_split_files_are_checked_against_the_shards(dataset: Path) -> None:
    manifest = json.loads((dataset / "dataset.json").read_text())
    manifest["splits"]["train"]["pairs"] += 1
    (dataset / "dataset.json").write_text(json.dumps(manifest))
    os.replace(dataset / VAL, dataset / "elsewhere.h5")
    result = verify(dataset)
    bad = bad_lines(result.output)
    assert bad[VAL] == "missing"
    assert "train has 17 pairs, the shards hold 16" in bad["dataset.json"]
    assert f"maps the missing file {VAL}" in bad["val.h5"]
    assert "train.h5" not in bad


def test_without_a_manifest_the_plan_decides(dataset: Path) -> None:
    for name in ("dataset.json", "train.h5", "val.h5", "test.h5"):
        (dataset / name).unlink()
    (dataset / VAL).unlink()
    result = verify(dataset)
    assert result.exit_code == 1
    assert bad_lines(result.output) == {VAL: "missing"}


def test_directory_without_any_shard_is_a_one_line_error(tmp_path: Path) -> None:
    result = verify(tmp_path)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {tmp_path} is not a clevr-remv dataset: no dataset.json and no complete shard (render into it first)"]


def test_quarantine_moves_exactly_the_bad_shard_and_render_restores_it(dataset: Path, tiny_dataset: Path) -> None:
    flip_byte_in_chunk(dataset / VAL, "masks", 3)
    train_before = (dataset / TRAIN).read_bytes()
    result = verify(dataset, "--quarantine")
    assert result.exit_code == 1
    assert list(bad_lines(result.output)) == [VAL]
    assert (dataset / ".quarantine" / VAL).is_file() and not (dataset / VAL).exists()
    assert not (dataset / "dataset.json").exists() and not split_file_path(dataset, "val").exists()
    assert (dataset / TRAIN).read_bytes() == train_before and split_file_path(dataset, "train").exists()

    rerun = run_cli("render", *TINY_ARGS, "--out", str(dataset))
    assert rerun.exit_code == 0, rerun.output
    assert (dataset / TRAIN).read_bytes() == train_before  # only the quarantined shard was rendered again
    assert verify(dataset).exit_code == 0
    assert read_manifest(dataset) == read_manifest(tiny_dataset)
    with h5py.File(dataset / VAL) as new, h5py.File(tiny_dataset / VAL) as old:
        for name in ("masks", "depth", "visible_pixels", "refs/id", "refs/object"):
            np.testing.assert_array_equal(new[name][()], old[name][()], err_msg=name)


def test_quarantine_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    (tmp_path / ".quarantine" / "val").mkdir(parents=True)
    (tmp_path / ".quarantine" / VAL).write_text("first")
    (tmp_path / VAL).write_text("second")
    (tmp_path / "dataset.json").write_text("{}")
    report = VerifyReport(tmp_path, problems={VAL: ["cannot be opened"]})
    actions = quarantine(report)
    assert actions == ["removed dataset.json", f"moved {VAL} to .quarantine/val/shard-00000.1.h5"]
    assert (tmp_path / ".quarantine" / VAL).read_text() == "first"
    assert (tmp_path / ".quarantine" / "val" / "shard-00000.1.h5").read_text() == "second"


def test_report_counts(tiny_dataset: Path) -> None:
    views = []
    totals = []
    report = verify_dataset(tiny_dataset, on_view=lambda: views.append(1), on_start=totals.append)
    assert report.ok and report.scenes == 3 and report.pairs == 24
    assert totals == [27] and len(views) == 27  # 3 scenes x 9 views, each read
    sizes = sum(p.stat().st_size for p in tiny_dataset.glob("**/*.h5"))
    assert report.bytes == sizes
