"""A classical disparity estimate from the views alone: the plane sweep (a reference point for
`evaluate-disparity --baseline plane-sweep`).

For each candidate disparity d, every view is resampled onto the centre view as if all points were
at d (the refocusing of `refocus.py`); where the scene really is at d the views agree, so the cost
is their photometric variance, summed over a small window (a box filter) to be robust to noise.
The winner per pixel is the candidate of least cost, refined to sub-pixel by a parabola through
its neighbours' costs. Vectorised numpy: one pass over the views per candidate, on grey levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clevr_remv.lightfield.refocus import ShiftedViews

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as EPINET and others use


def _box_sum(image: np.ndarray, window: int) -> np.ndarray:
    """Mean over a window x window square around each pixel (edges: nearest), by integral image."""
    r = window // 2
    padded = np.pad(image, r, mode="edge").astype(np.float64)
    integral = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1))
    integral[1:, 1:] = padded.cumsum(0).cumsum(1)
    h, w = image.shape
    total = (integral[window:window + h, window:window + w] - integral[:h, window:window + w]
             - integral[window:window + h, :w] + integral[:h, :w])
    return (total / (window * window)).astype(np.float32)


def candidate_disparities(disp_min: float, disp_max: float, step: float = 0.05, margin: float = 0.1) -> np.ndarray:
    """Candidates every `step` pixels over [disp_min − margin, disp_max + margin]."""
    low, high = disp_min - margin, disp_max + margin
    count = int(np.ceil((high - low) / step)) + 1
    return low + step * np.arange(count)


def plane_sweep(images: np.ndarray, candidates: Sequence[float], grid: int | None = None, window: int = 7,
                views: Sequence[int] | None = None) -> np.ndarray:
    """Disparity (H, W) float32 of the centre view from a light field (V, H, W[, 3]) or (N, N, H, W[, 3]).

    `candidates`: the disparities to test (evenly spaced, see `candidate_disparities`); `window`:
    the side of the square over which costs are summed; `views`: the views to compare (all by default).
    """
    images = np.asarray(images)
    grey = images.astype(np.float32) @ LUMA if images.shape[-1] == 3 else images.astype(np.float32)
    candidates = np.asarray(candidates, dtype=np.float64)
    stack = ShiftedViews(grey, grid, float(np.max(np.abs(candidates))) if candidates.size else 0.0)
    chosen = list(range(stack.views)) if views is None else list(views)
    costs = np.empty((len(candidates), stack.height, stack.width), np.float32)
    for k, d in enumerate(candidates):
        total = np.zeros((stack.height, stack.width), np.float32)
        squares = np.zeros_like(total)
        for view in chosen:
            sample = stack.at_disparity(view, float(d))[..., 0]
            total += sample
            squares += sample * sample
        n = np.float32(len(chosen))
        variance = np.maximum(squares / n - (total / n) ** 2, 0.0)
        costs[k] = _box_sum(variance, window)
    best = np.argmin(costs, axis=0)
    disparity = candidates[best]
    # Sub-pixel: the vertex of the parabola through the best cost and its two neighbours.
    inner = (best > 0) & (best < len(candidates) - 1)
    k = np.clip(best, 1, max(len(candidates) - 2, 1))
    if len(candidates) >= 3:
        ys, xs = np.indices(best.shape)
        c0, c1, c2 = costs[k - 1, ys, xs], costs[k, ys, xs], costs[k + 1, ys, xs]
        curvature = c0 - 2 * c1 + c2
        with np.errstate(divide="ignore", invalid="ignore"):
            offset = np.where(curvature > 0, 0.5 * (c0 - c2) / curvature, 0.0)
        step = candidates[1] - candidates[0]
        disparity = np.where(inner, disparity + np.clip(offset, -0.5, 0.5) * step, disparity)
    return disparity.astype(np.float32)
