"""`evaluate --by occlusion`: the figures per bin of visible fraction equal a direct computation."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import run_cli

from clevr_remv.evaluation.metrics import THRESHOLDS
from clevr_remv.store import DatasetReader
from clevr_remv.truth.occlusion import BIN_NAMES, bin_index


def direct(dataset: Path, split: str, views: list[int], centre_mask: bool) -> dict[str, dict]:
    """Pooled P@K, mIoU, oIoU and (pair, view) count per bin, straight from the shards."""
    ious, inters, unions, bins = [], [], [], []
    for path in DatasetReader(dataset).shard_paths(split):
        with h5py.File(path, "r") as f:
            masks = f["masks"][()]
            for row, obj, visible, fraction in zip(f["refs/scene"][()], f["refs/object"][()], f["refs/visible"][()],
                                                   f["refs/visible_fraction"][()]):
                for view in views:
                    if not visible[view]:
                        continue
                    target = masks[row, view] == obj
                    prediction = masks[row, len(visible) // 2] == obj if centre_mask else target
                    inter, union = (prediction & target).sum(), (prediction | target).sum()
                    inters.append(inter), unions.append(union), ious.append(inter / union)
                    bins.append(int(bin_index(fraction[view])))
    ious, inters, unions, bins = map(np.array, (ious, inters, unions, bins))
    out = {}
    for b, name in enumerate(BIN_NAMES):
        m = bins == b
        out[name] = {"pairs": int(m.sum())}
        if m.any():
            out[name].update({f"p@{k:g}": float(np.mean(ious[m] >= k)) for k in THRESHOLDS})
            out[name].update(miou=float(ious[m].mean()), oiou=float(inters[m].sum() / unions[m].sum()))
    return out


@pytest.mark.parametrize("baseline", ["centre-mask", "oracle"])
def test_by_occlusion_equals_direct_computation(lightfield_dataset: Path, tmp_path: Path, baseline: str) -> None:
    report, plot = tmp_path / "report.json", tmp_path / "occlusion.png"
    result = run_cli("evaluate", str(lightfield_dataset), "--split", "train", "--baseline", baseline,
                     "--views", "all", "--by", "occlusion", "--json", str(report), "--plot", str(plot),
                     "--no-progress")
    assert result.exit_code == 0, result.output
    assert "by the referent's visible fraction" in result.output and plot.stat().st_size > 1000
    by = json.loads(report.read_text())["by_occlusion"]
    assert list(by) == list(BIN_NAMES)
    expected = direct(lightfield_dataset, "train", list(range(9)), baseline == "centre-mask")
    assert sum(e["pairs"] for e in expected.values()) > 0
    assert sum(e["pairs"] for name, e in expected.items() if name != "1.0") > 0  # some occlusion to bin
    for name, want in expected.items():
        got = by[name]["pooled"]
        assert got["pairs"] == want["pairs"], name
        for key, value in want.items():
            if key != "pairs":
                assert got[key] == pytest.approx(value, abs=1e-12), (name, key)
        if baseline == "oracle" and want["pairs"]:
            assert got["oiou"] == 1.0 and by[name]["mvr_oiou"] in (0.0, None)
    total = sum(by[name]["views"]["4"]["pairs"] for name in BIN_NAMES)
    assert total == json.loads(report.read_text())["views"]["4"]["pairs"]  # every visible pair in one bin


def test_by_occlusion_needs_visible_fractions(tiny_dataset: Path, tmp_path: Path) -> None:
    from test_amodal import make_old

    old = make_old(tiny_dataset, tmp_path / "old")
    result = run_cli("evaluate", str(old), "--split", "train", "--baseline", "oracle", "--by", "occlusion",
                     "--no-progress")
    assert result.exit_code == 1 and "no refs/visible_fraction" in result.output
    result = run_cli("evaluate", str(old), "--split", "train", "--baseline", "oracle", "--by", "color")
    assert result.exit_code == 2


@pytest.mark.parametrize("views, caption", [("all", "train, all 9 views"), ("0,1,2,3,4,5,6,7", "train, views 0,1,2,3,4,5,6,7")])
def test_by_occlusion_plot_title_says_the_views_in_few_words(lightfield_dataset: Path, tmp_path: Path, views: str,
                                                             caption: str) -> None:
    """Issue item 7: `--views all` printed every index in the subtitle, off the figure for 81 views."""
    from unittest import mock

    from clevr_remv.evaluation import by_occlusion

    with mock.patch.object(by_occlusion, "plot_bins") as plot:
        result = run_cli("evaluate", str(lightfield_dataset), "--split", "train", "--baseline", "oracle",
                         "--views", views, "--by", "occlusion", "--plot", str(tmp_path / "o.png"), "--no-progress")
    assert result.exit_code == 0, result.output
    assert plot.call_args.args[1].splitlines()[1] == caption


def test_a_long_view_list_is_shortened_with_its_count() -> None:
    from clevr_remv.data.selection import views_caption

    assert views_caption(range(81), 9) == "all 81 views"
    assert views_caption([40], 9) == "center view (40)"
    caption = views_caption(list(range(0, 81, 2)), 9)
    assert caption.startswith("41 views: 0,2,4,") and caption.endswith(",76,78,80") and len(caption) <= 48
