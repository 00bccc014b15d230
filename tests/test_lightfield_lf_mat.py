"""`export lf-mat` (issue #17 item 3): BasicLFSR's `.mat` per scene, read back as its
Generate_Data_for_*.py scripts read them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import scipy.io as scio
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.store import DatasetReader


def export(*args: str):
    return CliRunner().invoke(main, ["export", *args, "--no-progress"])


def basiclfsr_read(path: Path) -> np.ndarray:
    """What BasicLFSR does with each file of datasets/<name>/training/ (MATLAB v7.3 via h5py, else v5)."""
    try:
        data = h5py.File(path, "r")
        return np.array(data["LF"]).transpose((4, 3, 2, 1, 0))
    except OSError:
        return np.array(scio.loadmat(str(path))["LF"])


def test_lf_mat_holds_every_view_as_u_v_h_w_3(lightfield_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "lf"
    result = export("lf-mat", str(lightfield_dataset), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "test", "training", "validation"]
    reader = DatasetReader(lightfield_dataset)
    folders = {"train": "training", "val": "validation", "test": "test"}
    for split, folder in folders.items():
        files = []
        for root, _, names in os.walk(out / folder):  # BasicLFSR loads every file it walks into
            files += [Path(root) / name for name in names]
        assert all(f.suffix == ".mat" for f in files)
        for path in reader.shard_paths(split):
            with h5py.File(path) as f:
                first = int(f.attrs["first_scene"])
                for row in range(f["scenes"].shape[0]):
                    lf = basiclfsr_read(out / folder / f"{split}_{first + row:05d}.mat")
                    assert lf.shape == (3, 3, 80, 120, 3) and lf.dtype == np.uint8
                    for u in range(3):
                        for v in range(3):
                            np.testing.assert_array_equal(lf[u, v], f["images"][row, u * 3 + v])
    assert len(json.loads((out / "export.json").read_text())["scenes"]) == 5
    assert "/" not in json.loads((out / "export.json").read_text())["source"]  # no local path (issue item 7)
    assert json.loads((out / "export.json").read_text())["out"] == "."


def test_compressed_files_hold_the_same_light_field(lightfield_dataset: Path, tmp_path: Path) -> None:
    for name, extra in (("plain", []), ("small", ["--compress"])):
        result = export("lf-mat", str(lightfield_dataset), "--out", str(tmp_path / name), "--split", "val", *extra)
        assert result.exit_code == 0, result.output
    plain, small = tmp_path / "plain/validation/val_00000.mat", tmp_path / "small/validation/val_00000.mat"
    assert small.stat().st_size < 0.75 * plain.stat().st_size
    np.testing.assert_array_equal(basiclfsr_read(plain), basiclfsr_read(small))
