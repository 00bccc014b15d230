"""`clevr-remv evaluate` on the tiny rendered dataset (3x3 rig: corners 0, 2, 6, 8, centre 4).

The tiny dataset's test split is empty (3 scenes split 2/1/0), so these tests evaluate its val split.
Ground truth for the predictions files comes from `RefDataset`, a reader independent of evaluate.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.data.dataset import RefDataset
from clevr_remv.evaluation.predictions import PredictionsWriter, write_predictions
from clevr_remv.evaluation.scorecard import report_json
from clevr_remv.evaluation.scoring import evaluate

SPLIT = "val"
CORNERS_AND_CENTRE = [0, 2, 4, 6, 8]


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def truth_samples(root: Path, views=CORNERS_AND_CENTRE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ref_ids, views, masks) of every visible (pair, view): a perfect model's predictions."""
    samples = list(RefDataset(root, SPLIT, views=views))
    return (np.array([s["ref_id"] for s in samples]), np.array([s["view"] for s in samples]),
            np.stack([s["mask"] for s in samples]))


def without_source(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "source"}


def assert_one_error_line(result, *texts: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for text in texts:
        assert text in lines[0], lines[0]


def test_oracle_scores_iou_1_everywhere_and_mvr_0(tiny_dataset):
    report = evaluate(tiny_dataset, SPLIT, baseline="oracle", views="all").report
    assert sorted(report.views) == list(range(9))
    for scores in report.views.values():
        assert scores.pairs > 0
        assert scores.miou == scores.oiou == 1.0
        assert all(p == 1.0 for p in scores.precision.values())
    assert report.mvr_oiou == report.mvr_miou == 0.0


def test_centre_mask_is_perfect_at_the_centre_only(tiny_dataset):
    report = evaluate(tiny_dataset, SPLIT, baseline="centre-mask").report
    assert sorted(report.views) == CORNERS_AND_CENTRE  # the baselines' default views
    assert report.views[4].oiou == report.views[4].miou == 1.0
    for corner in (0, 2, 6, 8):  # parallax moves the objects between views
        assert report.views[corner].oiou < 1.0
        assert report.views[corner].miou < 1.0
    assert report.mvr_oiou > 0 and report.mvr_miou > 0


def test_predictions_written_from_the_ground_truth_equal_the_oracle(tiny_dataset, tmp_path):
    ref_ids, views, masks = truth_samples(tiny_dataset)
    write_predictions(tmp_path / "pred.h5", ref_ids, views, masks)
    mine = evaluate(tiny_dataset, SPLIT, predictions=tmp_path / "pred.h5")
    oracle = evaluate(tiny_dataset, SPLIT, baseline="oracle")
    assert without_source(report_json(mine)) == without_source(report_json(oracle))


def test_png_folder_equals_the_hdf5_file(tiny_dataset, tmp_path):
    ref_ids, views, masks = truth_samples(tiny_dataset)
    shifted = np.roll(masks, 2, axis=2)  # an imperfect model: every mask two pixels to the right
    shifted[::3] = False  # and some pairs missed completely
    write_predictions(tmp_path / "pred.h5", ref_ids, views, shifted)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, (ref_id, view, mask) in enumerate(zip(ref_ids, views, shifted)):
        pixels = mask.astype(np.uint8) * (255 if i % 2 else 1)  # nonzero is foreground, whatever the value
        Image.fromarray(pixels).save(folder / f"{ref_id}_{view}.png")
    (folder / "notes.txt").write_text("other files are ignored")
    from_h5 = report_json(evaluate(tiny_dataset, SPLIT, predictions=tmp_path / "pred.h5"))
    from_png = report_json(evaluate(tiny_dataset, SPLIT, predictions=folder))
    assert without_source(from_h5) == without_source(from_png)
    assert 0 < from_h5["views"]["4"]["oiou"] < 1 and from_h5["views"]["4"]["p@0.5"] <= 2 / 3


def test_writer_in_batches_equals_one_call(tiny_dataset, tmp_path):
    ref_ids, views, masks = truth_samples(tiny_dataset)
    write_predictions(tmp_path / "one.h5", ref_ids, views, masks)
    with PredictionsWriter(tmp_path / "batches.h5", *masks.shape[1:]) as out:
        for start in range(0, len(ref_ids), 7):
            out.add(ref_ids[start:start + 7], views[start:start + 7], masks[start:start + 7])
    import h5py

    with h5py.File(tmp_path / "one.h5") as a, h5py.File(tmp_path / "batches.h5") as b:
        for name in ("ref_id", "view", "mask"):
            assert np.array_equal(a[name][()], b[name][()])


def test_a_predictions_file_is_about_the_size_of_its_compressed_masks(tmp_path):
    """Ids and views cost bytes, not the 1 MB of two uncompressed 65,536-element int64 chunks."""
    import zlib

    yy, xx = np.mgrid[:80, :120]
    masks = np.stack([(yy - 40) ** 2 + (xx - 3 * k) ** 2 < (5 + k) ** 2 for k in range(40)])
    path = write_predictions(tmp_path / "pred.h5", np.arange(40) // 5 * 1000, np.arange(40) % 9, masks)
    compressed = sum(len(zlib.compress(m.astype(np.uint8).tobytes(), 1)) for m in masks)
    assert path.stat().st_size < compressed + 8_000, (path.stat().st_size, compressed)


def test_a_view_that_is_no_view_index_is_refused(tmp_path):
    with pytest.raises(ValueError, match="views must be view indices, got 4294967296"):
        write_predictions(tmp_path / "pred.h5", [1], [1 << 32], np.zeros((1, 4, 4), bool))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="one entry per prediction"):
        write_predictions(tmp_path / "pred.h5", [1, 2], [4], np.zeros((2, 4, 4), bool))
    assert list(tmp_path.iterdir()) == []


def test_default_views_are_those_in_the_predictions(tiny_dataset, tmp_path):
    ref_ids, views, masks = truth_samples(tiny_dataset, views=[1, 4])
    write_predictions(tmp_path / "pred.h5", ref_ids, views, masks)
    report = evaluate(tiny_dataset, SPLIT, predictions=tmp_path / "pred.h5").report
    assert sorted(report.views) == [1, 4] and report.chosen == (1, 4)
    # Asking for fewer views than predicted scores only those (plus the centre for MVR).
    report = evaluate(tiny_dataset, SPLIT, predictions=tmp_path / "pred.h5", views="1").report
    assert sorted(report.views) == [1, 4] and report.chosen == (1,)


def test_cli_prints_the_table_and_writes_json_and_plot(tiny_dataset, tmp_path):
    result = invoke("evaluate", tiny_dataset, "--split", SPLIT, "--baseline", "centre-mask", "--views", "corners",
                    "--json", tmp_path / "scores.json", "--plot", tmp_path / "iou.png", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "P@0.5" in result.output and "MVR (overall IoU)" in result.output and "mean" in result.output
    document = json.loads((tmp_path / "scores.json").read_text())
    assert {"views", "mean", "std", "mvr_oiou", "mvr_miou"} <= set(document)
    assert set(document["views"]) == {"0", "2", "4", "6", "8"}  # the centre comes along for MVR
    assert document["chosen_views"] == [0, 2, 6, 8]
    keys = {"miou", "oiou", "p@0.5", "p@0.6", "p@0.7", "p@0.8", "p@0.9", "pairs", "left_out"}
    assert all(set(v) == keys for v in document["views"].values())
    assert set(document["mean"]) == set(document["std"]) == keys - {"pairs", "left_out"}
    corners = [document["views"][v]["oiou"] for v in ("0", "2", "6", "8")]
    assert document["mean"]["oiou"] == pytest.approx(np.mean(corners))
    assert document["mvr_oiou"] > 0
    with Image.open(tmp_path / "iou.png") as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 200


def bad_predictions(root: Path, tmp_path: Path, case: str) -> Path:
    ref_ids, views, masks = truth_samples(root)
    if case == "unknown ref id":
        ref_ids = ref_ids.copy()
        ref_ids[[3, 5]] = 987654321
    elif case == "view outside the rig":
        views = views.copy()
        views[4] = 9
    elif case == "duplicate":
        ref_ids, views, masks = (np.concatenate([a, a[:2]]) for a in (ref_ids, views, masks))
    elif case == "wrong size":
        masks = masks[:, :-1, :]
    elif case == "centre missing":
        keep = views != 4
        ref_ids, views, masks = ref_ids[keep], views[keep], masks[keep]
    elif case == "corner missing":
        keep = np.arange(len(views)) != np.flatnonzero(views == 8)[0]
        ref_ids, views, masks = ref_ids[keep], views[keep], masks[keep]
    path = tmp_path / "pred.h5"
    write_predictions(path, ref_ids, views, masks)
    return path


@pytest.mark.parametrize("case, texts", [
    ("unknown ref id", ["2 prediction(s) with a ref_id that is not a pair", "ref_id 987654321"]),
    ("view outside the rig", ["1 prediction(s) for a view outside the 3x3 rig", "view 9"]),
    ("duplicate", ["2 duplicate prediction(s)"]),
    ("wrong size", ["mask(s) of the wrong size", "47 x 64"]),
    ("centre missing", ["pair(s) have no prediction for the centre view 4"]),
    ("corner missing", ["1 pair(s) visible in view 8 have no prediction there"]),
])
def test_bad_predictions_end_with_one_line(tiny_dataset, tmp_path, case, texts):
    path = bad_predictions(tiny_dataset, tmp_path, case)
    result = invoke("evaluate", tiny_dataset, "--split", SPLIT, "--predictions", path, "--no-progress",
                    "--json", tmp_path / "scores.json")
    assert_one_error_line(result, str(path), *texts)
    assert not (tmp_path / "scores.json").exists()


@pytest.mark.parametrize("args, text, code", [
    ([], "give --predictions", 2),  # usage errors
    (["--baseline", "oracle", "--predictions", "x.h5"], "exclude each other", 2),
    (["--baseline", "oracle", "--views", "0,12"], "view 12 is outside the 3x3 rig", 1),
    (["--baseline", "oracle", "--split", "nope"], "split 'nope' not in", 1),
    (["--baseline", "oracle", "--split", "test"], "split 'test'", 1),
    (["--predictions", "does-not-exist.h5"], "no such predictions file", 1),
])
def test_bad_arguments_end_with_one_line(tiny_dataset, args, text, code):
    result = invoke("evaluate", tiny_dataset, "--split", SPLIT, *args, "--no-progress")
    assert_one_error_line(result, text, code=code)


def test_a_predictions_file_without_its_datasets_is_one_line(tiny_dataset, tmp_path):
    import h5py

    with h5py.File(tmp_path / "pred.h5", "w") as f:
        f["ref_id"] = np.arange(3)
    result = invoke("evaluate", tiny_dataset, "--split", SPLIT, "--predictions", tmp_path / "pred.h5")
    assert_one_error_line(result, "no dataset view, mask")


def test_badly_named_pngs_are_one_line(tiny_dataset, tmp_path):
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp_path / "pair3-view4.png")
    result = invoke("evaluate", tiny_dataset, "--split", SPLIT, "--predictions", tmp_path)
    assert_one_error_line(result, "1 PNG file(s) not named <ref_id>_<view>.png", "pair3-view4.png")


def test_a_hidden_referent_is_left_out_of_that_view_only(tiny_dataset, tmp_path):
    import shutil

    import h5py

    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset, root)
    ref_ids, views, masks = truth_samples(root)
    with h5py.File(root / "val" / "shard-00000.h5", "r+") as f:  # as if pair 0 were occluded in view 8
        f["refs/visible"][0, 8] = False
        hidden = int(f["refs/id"][0])
    report = evaluate(root, SPLIT, baseline="centre-mask").report
    assert report.views[8].left_out == 1 and report.views[8].pairs == report.views[4].pairs - 1
    assert all(report.views[v].left_out == 0 for v in (0, 2, 4, 6))
    # Its prediction may be absent (not an error) or present (ignored): the figures are the same.
    keep = ~((ref_ids == hidden) & (views == 8))
    write_predictions(tmp_path / "without.h5", ref_ids[keep], views[keep], masks[keep])
    write_predictions(tmp_path / "with.h5", ref_ids, views, np.zeros_like(masks) | masks & keep[:, None, None])
    without = report_json(evaluate(root, SPLIT, predictions=tmp_path / "without.h5"))
    with_it = report_json(evaluate(root, SPLIT, predictions=tmp_path / "with.h5"))
    assert without_source(without) == without_source(with_it)
    assert without["views"]["8"]["left_out"] == 1 and without["views"]["8"]["oiou"] == 1.0


def test_an_interrupted_writer_keeps_the_previous_file(tmp_path):
    path = tmp_path / "pred.h5"
    write_predictions(path, [1], [4], np.ones((1, 4, 4), bool))
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with PredictionsWriter(path, 4, 4) as out:
            out.add([2], [4], np.zeros((1, 4, 4), bool))
            raise KeyboardInterrupt
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_centre_mask_figures_match_an_independent_computation(tiny_dataset):
    masks = {(s["ref_id"], s["view"]): s["mask"] for s in RefDataset(tiny_dataset, SPLIT, views=[4, 0, 7])}
    report = evaluate(tiny_dataset, SPLIT, baseline="centre-mask", views=[0, 7]).report
    for view in (0, 7):
        pairs = [r for (r, v) in masks if v == view]
        inter = np.array([(masks[r, view] & masks[r, 4]).sum() for r in pairs])
        union = np.array([(masks[r, view] | masks[r, 4]).sum() for r in pairs])
        assert report.views[view].oiou == pytest.approx(inter.sum() / union.sum())
        assert report.views[view].miou == pytest.approx(np.mean(inter / union))
    q = {v: report.views[v].oiou for v in (0, 7)}
    assert report.mvr_oiou == pytest.approx(-(q[0] * np.log(q[0]) / 2 + q[7] * np.log(q[7]) / 1))


def test_writer_copies_batches_the_caller_reuses(tmp_path):
    batch = np.zeros((1, 4, 4), bool)
    with PredictionsWriter(tmp_path / "pred.h5", 4, 4) as out:
        for k in range(3):
            batch[:] = False
            batch[0, k, k] = True  # the same array, refilled for each sample
            out.add([k], [4], batch)
    import h5py

    with h5py.File(tmp_path / "pred.h5") as f:
        assert [int(np.flatnonzero(m)[0]) for m in f["mask"][()]] == [0, 5, 10]


def test_a_file_records_its_split_views_and_dataset(tiny_dataset, tmp_path):
    import h5py

    from clevr_remv.store import dataset_id, read_manifest

    ref_ids, views, masks = truth_samples(tiny_dataset)
    path = write_predictions(tmp_path / "pred.h5", ref_ids, views, masks, dataset=tiny_dataset, split=SPLIT)
    with h5py.File(path) as f:
        assert f.attrs["split"] == SPLIT and f.attrs["dataset"] == str(tiny_dataset)
        assert f.attrs["dataset_id"] == dataset_id(read_manifest(tiny_dataset))
        assert f.attrs["views"].tolist() == CORNERS_AND_CENTRE
    assert evaluate(tiny_dataset, SPLIT, predictions=path).report.views[4].oiou == 1.0
    with pytest.raises(ValueError, match="'tast': .* has splits train, val, test"):
        write_predictions(tmp_path / "typo.h5", ref_ids, views, masks, dataset=tiny_dataset, split="tast")


def test_a_file_for_another_split_is_refused_naming_both(tiny_dataset, tmp_path):
    """ref_ids restart in every split: a test file fits val (it scored mIoU 1.76 % before)."""
    ref_ids, views, masks = truth_samples(tiny_dataset)  # val's ids: the tiny test split is empty
    path = write_predictions(tmp_path / "pred.h5", ref_ids, views, masks, dataset=tiny_dataset, split="test")
    result = invoke("evaluate", tiny_dataset, "--split", SPLIT, "--predictions", path, "--no-progress")
    assert_one_error_line(result, f"{path} holds predictions for the 'test' split, not for 'val'",
                          "--split test")


def test_a_file_for_another_dataset_is_refused_naming_both(tiny_dataset, tmp_path):
    """Another seed, the same size and ids: everything fits, only the record tells them apart."""
    other = tmp_path / "other"
    (other / SPLIT).mkdir(parents=True)  # an empty dataset is enough to write for: only its manifest is read
    manifest = json.loads((tiny_dataset / "dataset.json").read_text())
    manifest["config"]["seed"] = manifest["master_seed"] = 12
    (other / "dataset.json").write_text(json.dumps(manifest))
    ref_ids, views, masks = truth_samples(tiny_dataset)
    path = write_predictions(tmp_path / "pred.h5", ref_ids, views, masks, dataset=other, split=SPLIT)
    result = invoke("evaluate", tiny_dataset, "--split", SPLIT, "--predictions", path, "--no-progress")
    assert_one_error_line(result, f"holds predictions for the dataset {other} (id ", f"not for {tiny_dataset} (id ")


def test_a_plain_h5py_file_is_scored_with_one_warning(tiny_dataset, tmp_path):
    import subprocess
    import sys

    import h5py

    ref_ids, views, masks = truth_samples(tiny_dataset)
    with h5py.File(tmp_path / "plain.h5", "w") as f:  # as the docs allow: no PredictionsWriter
        f["ref_id"], f["view"], f["mask"] = ref_ids, views, masks.astype(np.uint8)
    recorded = write_predictions(tmp_path / "recorded.h5", ref_ids, views, masks, dataset=tiny_dataset, split=SPLIT)
    cli = Path(sys.executable).parent / "clevr-remv"
    runs = {name: subprocess.run([str(cli), "evaluate", str(tiny_dataset), "--split", SPLIT, "--predictions",
                                  str(path), "--no-progress"], capture_output=True, text=True)
            for name, path in (("plain", tmp_path / "plain.h5"), ("recorded", recorded))}
    assert runs["plain"].returncode == runs["recorded"].returncode == 0, runs
    warnings = [line for line in runs["plain"].stderr.splitlines() if "could not check" in line]
    assert warnings == [f"clevr-remv: {tmp_path / 'plain.h5'} records no dataset and no split (written without "
                        f"PredictionsWriter(..., dataset=, split=)): could not check that it was made for the "
                        f"'val' split of {tiny_dataset}"], runs["plain"].stderr
    assert "could not check" not in runs["recorded"].stderr
    table = lambda run: run.stdout.split("\n", 1)[1]  # noqa: E731  (the first line names the file)
    assert table(runs["plain"]) == table(runs["recorded"])


def test_an_mvr_that_cannot_be_computed_reads_n_a_without_a_percent_sign(tiny_dataset: Path) -> None:
    """Issue item 7: "MVR (overall IoU): n/a %"."""
    import dataclasses

    from clevr_remv.evaluation import evaluate
    from clevr_remv.evaluation.scorecard import format_report

    evaluation = evaluate(tiny_dataset, "train", baseline="oracle", views="all")
    report = dataclasses.replace(evaluation.report, mvr_oiou=float("nan"), mvr_miou=float("nan"))
    text = format_report(dataclasses.replace(evaluation, report=report))
    assert "MVR (overall IoU): n/a   MVR (mean IoU): n/a" in text and "n/a %" not in text
    assert "MVR (overall IoU): 0.00 %" in format_report(evaluation)


def test_counts_of_one_are_singular(tiny_dataset: Path, tmp_path: Path) -> None:
    """Issue item 7: "1 scenes", "1 focal stacks"."""
    from clevr_remv.contract import counted

    assert [counted(n, "scene") for n in (0, 1, 2, 1500)] == ["0 scenes", "1 scene", "2 scenes", "1,500 scenes"]
    result = CliRunner().invoke(main, ["export", "focal-stack", str(tiny_dataset), "--out", str(tmp_path / "fs"),
                                       "--split", "train", "--scenes", "0", "--slices", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "train: 1 focal stack\n" in result.output
    result = CliRunner().invoke(main, ["evaluate", str(tiny_dataset), "--split", "val", "--baseline", "oracle",
                                       "--views", "all", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "(8 pairs, 3x3 rig)" in result.output or " pairs, 3x3 rig)" in result.output
