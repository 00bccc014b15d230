"""`stats`: the distribution of the referents' visible fraction, centre view against all views, per split."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
from conftest import run_cli

from clevr_remv.store import DatasetReader
from clevr_remv.truth.occlusion import (
    BIN_NAMES,
    bin_index,
    fraction_histogram,
    summarise_histogram,
)


def test_fraction_histogram_slots_and_bins() -> None:
    f = np.array([np.nan, 0.0, 0.01, 0.2499, 0.25, 0.5, 0.7499, 0.75, 0.999, 1.0, 1.0], np.float32)
    h = fraction_histogram(f)
    assert h.sum() == len(f) and h[0] == 1 and h[1] == 1 and h[-1] == 2
    summary = summarise_histogram(h)
    expected = {name: int((bin_index(f) == i).sum()) for i, name in enumerate(BIN_NAMES)}
    assert summary["bins"] == expected and summary["hidden"] == 1 and summary["outside_image"] == 1


def test_stats_reports_visible_fraction_per_split(lightfield_dataset: Path, tmp_path: Path) -> None:
    result = run_cli("stats", str(lightfield_dataset), "--out", str(tmp_path / "stats"), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "referents unoccluded, centre / all views" in result.output
    report = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert "visible_fraction.png" in report["figures"] and (tmp_path / "stats" / "visible_fraction.png").is_file()
    reader = DatasetReader(lightfield_dataset)
    for split in reader.splits:
        fractions = []
        for path in reader.shard_paths(split):
            with h5py.File(path, "r") as f:
                fractions.append(f["refs/visible_fraction"][()])
        fraction = np.concatenate(fractions)
        got = report["splits"][split]["visible_fraction"]
        for where, values in (("centre_view", fraction[:, 4]), ("all_views", fraction)):
            assert got[where]["pairs_views"] == values.size
            assert got[where]["bins"] == {name: int((bin_index(values) == i).sum()) for i, name in enumerate(BIN_NAMES)}
            assert got[where]["unoccluded"] == int((values == 1).sum())


def test_stats_of_an_old_dataset_has_no_visible_fraction(tiny_dataset: Path, tmp_path: Path) -> None:
    from test_amodal import make_old

    old = make_old(tiny_dataset, tmp_path / "old")
    result = run_cli("stats", str(old), "--out", str(tmp_path / "stats"), "--no-progress")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert report["splits"]["train"]["visible_fraction"] is None
    assert "visible_fraction.png" not in report["figures"]
