"""`evaluate-disparity` (issue #17 item 6): the HCI benchmark's general metrics, checked against a
transcription of its toolkit; the ground truth scores 0; the plane sweep beats zero; bad
predictions are one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.evaluation.disparity_metrics import BORDER, scene_metrics
from clevr_remv.evaluation.disparity_scoring import evaluate_disparity
from clevr_remv.export.pfm import write_pfm
from clevr_remv.data import read_lightfield_scene


def invoke(*args: str):
    return CliRunner().invoke(main, ["evaluate-disparity", *args, "--no-progress"])


# -- a transcription of the toolkit (toolkit/metrics/general_metrics.py, toolkit/utils/misc.py) in Python 3

def get_mask_invalid(matrix):
    return np.isposinf(matrix) + np.isneginf(matrix) + np.isnan(matrix)


def get_mask_valid(matrix):
    return ~get_mask_invalid(matrix)


def percentage(total, part):
    if total == 0:
        return np.nan
    return 100 * part / float(total)


class Scene:
    """BaseScene's get_boundary_mask at gt_scale 1 (boundary_offset 15), and the ground truth's
    valid pixels as a region mask, as the toolkit's region metrics combine theirs."""

    def __init__(self, shape, valid, boundary_offset=15):
        self.shape, self.valid, self.boundary_offset = shape, valid, boundary_offset

    def get_boundary_mask(self, ignore_boundary=True):
        mask = np.full(self.shape, fill_value=0, dtype=bool)
        f = self.boundary_offset
        mask[f:self.shape[0] - f, f:self.shape[1] - f] = True
        return mask & self.valid


def toolkit_mse(algo_result, gt, scene, factor=100):
    mask = scene.get_boundary_mask() * get_mask_valid(algo_result) * get_mask_valid(gt)
    with np.errstate(invalid="ignore"):
        diff = np.square(gt - algo_result)
    return np.average(diff[mask]) * factor


def toolkit_badpix(algo_result, gt, scene, thresh):
    with np.errstate(invalid="ignore"):
        m_bad_pix = np.abs(algo_result - gt) > thresh
    mask = scene.get_boundary_mask() * get_mask_valid(m_bad_pix)
    return percentage(np.sum(mask), np.sum(m_bad_pix[mask]))


def toolkit_quantile(algo_result, gt, scene, pct=25, factor=100):
    diffs = np.abs(algo_result - gt) * factor
    mask = scene.get_boundary_mask() * get_mask_valid(diffs) * get_mask_valid(algo_result)
    sorted_diffs = np.sort(diffs[mask])
    idx = np.size(sorted_diffs) * pct / 100.
    return sorted_diffs[int(idx)]


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_the_toolkits_definitions_on_random_predictions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(40, 90)), int(rng.integers(40, 120)))
    gt = rng.uniform(-2, 2, shape)
    prediction = gt + rng.normal(0, [0.005, 0.05, 0.3][seed % 3], shape)
    valid = rng.random(shape) > (0.0 if seed == 0 else 0.2)
    ours = scene_metrics(prediction, gt, valid)
    scene = Scene(shape, valid)
    assert ours["mse_100"] == pytest.approx(toolkit_mse(prediction, gt, scene), rel=1e-12)
    for t, key in ((0.01, "badpix_0010"), (0.03, "badpix_0030"), (0.07, "badpix_0070")):
        assert ours[key] == pytest.approx(toolkit_badpix(prediction, gt, scene, t), rel=1e-12)
    assert ours["q_25_100"] == pytest.approx(toolkit_quantile(prediction, gt, scene), rel=1e-12)
    assert ours["pixels"] == int(scene.get_boundary_mask().sum())


def test_a_view_too_small_for_the_border_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves no pixel inside a 15-pixel border"):
        scene_metrics(np.zeros((30, 50)), np.zeros((30, 50)), np.ones((30, 50), bool))


def gt_predictions(root: Path, out: Path) -> Path:
    """The benchmark's algo_results/<algo>/disp_maps/<scene>.pfm holding the ground truth itself."""
    folder = out / "algo_results" / "truth" / "disp_maps"
    folder.mkdir(parents=True)
    for index in range(1):
        scene = read_lightfield_scene(root, "test", index, what=("depth",))
        write_pfm(scene.disparity[scene.centre], folder / f"{scene.name}.pfm")
    return folder.parent


def test_the_ground_truth_scores_zero(lightfield_dataset: Path, tmp_path: Path) -> None:
    algo = gt_predictions(lightfield_dataset, tmp_path)
    for given in (algo, algo / "disp_maps"):
        result = invoke(str(lightfield_dataset), "--predictions", str(given), "--json", str(tmp_path / "s.json"))
        assert result.exit_code == 0, result.output
        scores = json.loads((tmp_path / "s.json").read_text())
        assert scores["mean"] == {"mse_100": 0.0, "badpix_0010": 0.0, "badpix_0030": 0.0, "badpix_0070": 0.0,
                                  "q_25_100": 0.0, "pixels": (80 - 2 * BORDER) * (120 - 2 * BORDER)}
        assert list(scores["scenes"]) == ["test_00000"] and scores["split"] == "test"
    assert "test_00000" in result.output and "MSE*100" in result.output


def test_the_plane_sweep_beats_zero_on_every_scene(lightfield_dataset: Path) -> None:
    for split in ("train", "val", "test"):
        zero = evaluate_disparity(lightfield_dataset, split, baseline="zero")
        sweep = evaluate_disparity(lightfield_dataset, split, baseline="plane-sweep")
        for name, scores in zero.scenes.items():
            better = sweep.scenes[name]
            assert better["mse_100"] < scores["mse_100"] / 3, name
            assert better["badpix_0070"] < scores["badpix_0070"] and better["q_25_100"] < scores["q_25_100"], name


def test_plot_writes_a_picture_per_scene(lightfield_dataset: Path, tmp_path: Path) -> None:
    result = invoke(str(lightfield_dataset), "--split", "train", "--scenes", "1:", "--baseline", "zero",
                    "--plot", str(tmp_path / "pictures"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == ["train_00001.png", "train_00002.png"]
    assert (tmp_path / "pictures" / "train_00001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_predictions_are_one_line(lightfield_dataset: Path, tmp_path: Path) -> None:
    algo = gt_predictions(lightfield_dataset, tmp_path)
    folder = algo / "disp_maps"

    def one_line(*args: str, code: int = 1) -> str:
        result = invoke(str(lightfield_dataset), *args)
        assert result.exit_code == code, result.output
        [line] = result.output.splitlines()
        return line

    assert one_line("--split", "train", "--predictions", str(algo)) == (
        f"Error: {folder} holds predictions for the 'test' split, not for 'train' (no train_00000.pfm): "
        "evaluate it with --split test")
    shutil.copy(folder / "test_00000.pfm", folder / "train_00001.pfm")  # some of train's: the missing ones named
    assert one_line("--split", "train", "--predictions", str(algo)) == (
        f"Error: {folder}: no prediction for 2 of the 3 scene(s) of split 'train' (first: train_00000.pfm)")
    (folder / "train_00001.pfm").unlink()
    write_pfm(np.zeros((80, 100), np.float32), folder / "test_00000.pfm")
    assert one_line("--predictions", str(algo)) == (
        f"Error: {folder / 'test_00000.pfm'} is 100x80, the dataset's views are 120x80")
    nan = np.zeros((80, 120), np.float32)
    nan[3, 4] = np.nan
    write_pfm(nan, folder / "test_00000.pfm")
    assert one_line("--predictions", str(algo)) == (
        f"Error: {folder / 'test_00000.pfm'} has 1 NaN or infinite value(s)")
    (folder / "test_00000.pfm").write_bytes(b"PF\n120 80\n-1\n" + bytes(120 * 80 * 12))
    assert "not a one-channel PFM file" in one_line("--predictions", str(algo))
    assert one_line("--predictions", str(tmp_path / "nope")) == f"Error: --predictions {tmp_path / 'nope'}: no such folder"
    assert "give --predictions FOLDER or --baseline" in one_line(code=2)
    assert "exclude each other" in one_line("--predictions", str(algo), "--baseline", "zero", code=2)
    assert "Invalid value for '--scenes'" in one_line("--baseline", "zero", "--scenes", "4:2", code=2)
    assert one_line("--baseline", "zero", "--json", str(tmp_path / "x.txt")).startswith(f"Error: cannot write {tmp_path / 'x.txt'}")
    assert one_line("--baseline", "zero", "--split", "test", "--scenes", "5:") == (
        f"Error: no scene to evaluate: split 'test' of {lightfield_dataset} has 1 scene(s) (scenes 5: asked for)")
    shutil.rmtree(algo)
