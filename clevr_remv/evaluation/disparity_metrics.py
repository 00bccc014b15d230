"""The HCI 4D light-field benchmark's general disparity metrics, as its evaluation toolkit defines
them (`toolkit/metrics/general_metrics.py`, `toolkit/utils/misc.get_general_metrics`):

- MSE×100: the mean squared disparity error over the evaluated pixels, times 100;
- BadPix(t) for t = 0.01, 0.03, 0.07: the percentage of evaluated pixels with |prediction − truth| > t;
- Q25: the 25th percentile of the absolute errors times 100, taken as the toolkit takes it: the
  errors sorted, the value at index int(0.25 · count).

Evaluated pixels: all but a 15-pixel border on each side (the toolkit's `boundary_offset`), and,
as here the ground truth has a background with no surface, only where the ground truth is valid
(finite depth). Keys are the toolkit's metric ids, so scores line up with its `results.json`.
"""

from __future__ import annotations

import numpy as np

BORDER = 15  # pixels left out on each side (BaseScene.boundary_offset at gt_scale 1)
BAD_PIX_THRESHOLDS = (0.01, 0.03, 0.07)
QUANTILE = 25

# toolkit id -> display name, in the toolkit's order (MSE, BadPix 0.01/0.03/0.07, Q25)
METRICS: dict[str, str] = {
    "mse_100": "MSE*100",
    **{("badpix_%0.3f" % t).replace(".", ""): "BadPix(%0.2f)" % t for t in BAD_PIX_THRESHOLDS},
    f"q_{QUANTILE}_100": f"Q{QUANTILE}",
}


def evaluation_mask(valid: np.ndarray, border: int = BORDER) -> np.ndarray:
    """`valid` without `border` pixels on each side."""
    h, w = valid.shape
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"a {w}x{h} view leaves no pixel inside a {border}-pixel border")
    mask = np.zeros(valid.shape, bool)
    mask[border:h - border, border:w - border] = True
    return mask & valid


def mse_x100(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    diff = prediction.astype(np.float64)[mask] - truth.astype(np.float64)[mask]
    return float(np.mean(diff * diff) * 100.0)


def bad_pix(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray, threshold: float) -> float:
    errors = np.abs(prediction.astype(np.float64)[mask] - truth.astype(np.float64)[mask])
    return float(100.0 * np.count_nonzero(errors > threshold) / errors.size)


def quantile_x100(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray, percentage: int = QUANTILE) -> float:
    errors = np.sort(np.abs(prediction.astype(np.float64)[mask] - truth.astype(np.float64)[mask]) * 100.0)
    return float(errors[int(errors.size * percentage / 100.0)])


def scene_metrics(prediction: np.ndarray, truth: np.ndarray, valid: np.ndarray, border: int = BORDER) -> dict[str, float]:
    """Every general metric of one scene's centre-view prediction, by toolkit id, plus `pixels`."""
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction of shape {prediction.shape} for a ground truth of shape {truth.shape}")
    if not np.all(np.isfinite(prediction)):
        raise ValueError("prediction has NaN or infinite values")
    mask = evaluation_mask(valid, border)
    if not mask.any():
        raise ValueError("no valid ground-truth pixel inside the border")
    scores = {"mse_100": mse_x100(prediction, truth, mask)}
    for t in BAD_PIX_THRESHOLDS:
        scores[("badpix_%0.3f" % t).replace(".", "")] = bad_pix(prediction, truth, mask, t)
    scores[f"q_{QUANTILE}_100"] = quantile_x100(prediction, truth, mask)
    scores["pixels"] = int(mask.sum())
    return scores


def mean_metrics(per_scene: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over scenes (the benchmark's per-scene scores averaged), and the pixels."""
    if not per_scene:
        return {}
    mean = {key: float(np.mean([s[key] for s in per_scene])) for key in METRICS}
    mean["pixels"] = int(sum(s["pixels"] for s in per_scene))
    return mean
