"""Shift-and-add refocusing of the light field onto the centre view.

    F_d(y, x) = mean over views (r, c) of I_rc(y − (r − c₀)·d, x − (c − c₀)·d)

A point at disparity d (pixels per view step, `rig.disparity`) is seen in view (r, c) exactly at
the sampled position, so every view adds the same colour there and the point is sharp in F_d;
points at other disparities are averaged over a (|d − d_point|·(N − 1))-pixel wide footprint and
blur. F_0 focuses on the rig's focus plane (the scene centre) and is the plain mean of the views.
Sampling is bilinear (sub-pixel d), positions outside a view take its nearest edge pixel.

Each view's shift is the same for all its pixels, so sampling is slicing an edge-padded copy of the
stack at the integer part of the shift and blending four such slices with the fractional weights:
vectorised numpy, a few array operations per view and no per-pixel index arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import isqrt

import numpy as np

from clevr_remv.scene import rig


def _as_views(images: np.ndarray, grid: int | None) -> tuple[np.ndarray, int, bool]:
    """(V, H, W, C) views, N, and whether the input had a channel axis.

    Accepted: (V, H, W) and (V, H, W, C) with C <= 4 in view order, (N, N, H, W) and (N, N, H, W, C).
    """
    images = np.asarray(images)
    if images.ndim == 5 or (images.ndim == 4 and images.shape[-1] > 4):
        images = images.reshape(images.shape[0] * images.shape[1], *images.shape[2:])
    if images.ndim not in (3, 4):
        raise ValueError(f"light field of shape {images.shape}: expected (V, H, W[, C]) or (N, N, H, W[, C])")
    channels = images.ndim == 4
    views = images if channels else images[..., None]
    n = isqrt(views.shape[0])
    if grid is None:
        grid = n
    if views.shape[0] != grid * grid:
        raise ValueError(f"{views.shape[0]} views do not make a {grid}x{grid} light field")
    return views, grid, channels


class ShiftedViews:
    """The views of one light field, padded once, sampled at any per-view sub-pixel shift."""

    def __init__(self, images: np.ndarray, grid: int | None = None, max_shift: float = 0.0) -> None:
        views, self.grid, self.has_channels = _as_views(images, grid)
        self.views, self.height, self.width, self.channels = views.shape
        # (row - c0, col - c0) of every view, in view order.
        steps = rig.grid_offsets(self.grid)
        self.steps = np.stack([steps[:, 1], steps[:, 0]], axis=1)
        self.pad, self.padded = 0, views
        self.grow(max_shift)

    def grow(self, max_shift: float) -> None:
        """Make room (edge padding) for shifts up to `max_shift` pixels per view step."""
        need = int(np.ceil(abs(max_shift) * (self.grid // 2))) + 1
        if need > self.pad:
            core = self.padded[:, self.pad:self.pad + self.height, self.pad:self.pad + self.width]
            self.padded = np.pad(core.astype(np.float32, copy=False), ((0, 0), (need, need), (need, need), (0, 0)),
                                 mode="edge")
            self.pad = need

    def sampled(self, view: int, dy: float, dx: float) -> np.ndarray:
        """View `view` sampled at (y + dy, x + dx) for every centre pixel (y, x): (H, W, C) float32."""
        (y0, a), (x0, b) = self._split(dy), self._split(dx)
        h, w = self.height, self.width
        src = self.padded[view]
        top = src[y0:y0 + h, x0:x0 + w] * ((1 - a) * (1 - b))
        if b:
            top += src[y0:y0 + h, x0 + 1:x0 + 1 + w] * ((1 - a) * b)
        if a:
            top += src[y0 + 1:y0 + 1 + h, x0:x0 + w] * (a * (1 - b))
            if b:
                top += src[y0 + 1:y0 + 1 + h, x0 + 1:x0 + 1 + w] * (a * b)
        return top

    def at_disparity(self, view: int, disparity: float) -> np.ndarray:
        """View `view` resampled onto the centre view for points at `disparity` (the convention:
        centre (y, x) is at (y − (r − c₀)·d, x − (c − c₀)·d) in view (r, c))."""
        r, c = self.steps[view]
        return self.sampled(view, -r * disparity, -c * disparity)

    def refocus(self, disparity: float, views: Sequence[int] | None = None) -> np.ndarray:
        """The mean of the chosen views (all by default) resampled at `disparity`: (H, W, C) float32.

        The same as averaging `at_disparity` of every view, in half the work: a view's shift is
        (−(r − c₀)·d, −(c − c₀)·d), so the views of one rig row share their vertical shift; each
        view is shifted horizontally (two taps) into its row's sum, and each row's sum vertically.
        """
        self.grow(disparity)
        chosen = list(range(self.views) if views is None else views)
        rows: dict[float, list[int]] = {}
        for view in chosen:
            rows.setdefault(float(self.steps[view][0]), []).append(view)
        h, w = self.height, self.width
        total = np.zeros((h, w, self.channels), np.float32)
        for r, in_row in rows.items():
            row_sum = np.zeros((self.padded.shape[1], w, self.channels), np.float32)
            for view in in_row:
                x0, b = self._split(-self.steps[view][1] * disparity)
                row_sum += self.padded[view, :, x0:x0 + w] * (1 - b)
                if b:
                    row_sum += self.padded[view, :, x0 + 1:x0 + 1 + w] * b
            y0, a = self._split(-r * disparity)
            total += row_sum[y0:y0 + h] * (1 - a)
            if a:
                total += row_sum[y0 + 1:y0 + 1 + h] * a
        return total / np.float32(len(chosen))

    def _split(self, shift: float) -> tuple[int, np.float32]:
        """Start index in the padded axis and bilinear weight of the next sample, for a shift."""
        whole = np.floor(shift)
        return self.pad + int(whole), np.float32(shift - whole)


def refocus(images: np.ndarray, disparity: float, grid: int | None = None) -> np.ndarray:
    """Shift-and-add refocus of a light field at `disparity` (pixels per view step).

    `images`: (V, H, W[, C]) views in view order (k = row·N + col) or (N, N, H, W[, C]); returns the
    refocused centre view as float32 (H, W[, C]) in the input's units (0..255 for uint8 views).
    `refocus(images, 0.0)` is the plain mean of the views; a point whose disparity is `disparity`
    is sharp, everything else is blurred in proportion to its distance in disparity.
    """
    stack = ShiftedViews(images, grid, abs(disparity))
    result = stack.refocus(float(disparity))
    return result if stack.has_channels else result[..., 0]


def focal_stack_disparities(disp_min: float, disp_max: float, slices: int) -> np.ndarray:
    """`slices` disparities evenly spread from `disp_min` to `disp_max` (both included)."""
    if slices < 1:
        raise ValueError(f"a focal stack needs at least 1 slice, not {slices}")
    if slices == 1:
        return np.array([(disp_min + disp_max) / 2.0])
    return np.linspace(disp_min, disp_max, slices)


def focal_stack(images: np.ndarray, disparities: Sequence[float], grid: int | None = None) -> np.ndarray:
    """(S, H, W[, C]) float32: `refocus` at each disparity, sharing one padded copy of the views."""
    disparities = [float(d) for d in disparities]
    stack = ShiftedViews(images, grid, max((abs(d) for d in disparities), default=0.0))
    slices = np.stack([stack.refocus(d) for d in disparities])
    return slices if stack.has_channels else slices[..., 0]
