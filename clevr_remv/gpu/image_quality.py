"""How far a rendered image is from a reference, on 8-bit sRGB images (the dataset's own form).

Used where renders are compared with renders: the render benchmark's quality table, the
cross-device reference check, and the test that two Blender versions draw the same scenes.
Plain NumPy, so the comparison needs no Blender.
"""

from __future__ import annotations

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images; inf where they are identical."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def off_share(a: np.ndarray, b: np.ndarray, levels: int = 3) -> float:
    """Share of pixels whose worst channel is off by more than `levels`: PSNR's average hides
    a few badly wrong pixels, this counts them."""
    return float((np.abs(a.astype(int) - b).max(axis=-1) > levels).mean())
