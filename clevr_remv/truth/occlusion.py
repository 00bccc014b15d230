"""How occluded a referent is: visible fraction per (pair, view) and its bins.

The visible fraction of an object in a view is its visible pixels (`visible_pixels`, what the
render shows) over its amodal pixels (`amodal_pixels`, what it would cover with nothing in front
of it; clevr_remv/truth/amodal.py), both in-image only. It is NaN where the object has no pixel in
the image at all (0 / 0). Pure NumPy: used by the shard writer, evaluate, stats and the loader.
"""

from __future__ import annotations

import numpy as np

# (name, low, high, low inclusive, high inclusive): the bins of `evaluate --by occlusion`, from
# unoccluded to mostly hidden. A fraction of exactly 0 (nothing visible) or NaN is in none.
BINS: tuple[tuple[str, float, float, bool, bool], ...] = (
    ("1.0", 1.0, 1.0, True, True),
    ("[0.75,1)", 0.75, 1.0, True, False),
    ("[0.5,0.75)", 0.5, 0.75, True, False),
    ("[0.25,0.5)", 0.25, 0.5, True, False),
    ("(0,0.25)", 0.0, 0.25, False, False),
)
BIN_NAMES: tuple[str, ...] = tuple(b[0] for b in BINS)


def visible_fraction(visible: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """float32 visible / amodal pixels, elementwise; NaN where the object has no pixel in the image."""
    visible, amodal = np.asarray(visible, np.float64), np.asarray(amodal, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(amodal > 0, visible / amodal, np.nan).astype(np.float32)


def ref_fractions(visible_pixels: np.ndarray, amodal_pixels: np.ndarray, rows: np.ndarray,
                  objects: np.ndarray) -> np.ndarray:
    """float32 (R, V) visible fraction of each pair's targets: scene row `rows[r]`, from (S, V, N_max)
    pixel counts. `objects` is (R,) 1-based referents, or (R, N_max) bool target sets (schema 4).

    Several targets: their visible pixels over their amodal pixels, summed (the fraction of what the
    sentence names that the view shows; visible pixels of different objects never overlap). No target:
    NaN, as for an object with no pixel in the image.
    """
    rows = np.asarray(rows, np.int64)
    views = np.shape(visible_pixels)[1]
    if not len(rows):
        return np.zeros((0, views), np.float32)
    objects = np.asarray(objects)
    if objects.ndim == 1:
        cols = objects.astype(np.int64) - 1
        return visible_fraction(np.asarray(visible_pixels)[rows, :, cols], np.asarray(amodal_pixels)[rows, :, cols])
    chosen = objects.astype(bool)[:, None, :]  # (R, 1, N_max)
    visible = np.where(chosen, np.asarray(visible_pixels)[rows], 0).sum(axis=-1)
    amodal = np.where(chosen, np.asarray(amodal_pixels)[rows], 0).sum(axis=-1)
    return visible_fraction(visible, amodal)


def bin_index(fraction: np.ndarray) -> np.ndarray:
    """int (same shape): the index in BINS of each fraction, -1 for 0 and NaN (in no bin)."""
    f = np.asarray(fraction, np.float64)
    out = np.full(f.shape, -1, np.int64)
    for i, (_, low, high, low_in, high_in) in enumerate(BINS):
        above = f >= low if low_in else f > low
        below = f <= high if high_in else f < high
        out[above & below & (out < 0)] = i
    return out


# Fine histogram of visible fractions (stats): [NaN (outside the image), 0 (hidden), 20 bins of width
# 0.05 over (0, 1), 1.0 (unoccluded)]. The bins of BINS are sums of these (0.25, 0.5 and 0.75 are edges).
FINE_BINS = 20
HISTOGRAM_LENGTH = FINE_BINS + 3


def fraction_histogram(fraction: np.ndarray) -> np.ndarray:
    """int64 (HISTOGRAM_LENGTH,) counts of `fraction` values in the fine histogram's slots."""
    f = np.asarray(fraction, np.float64).ravel()
    slot = np.full(f.shape, FINE_BINS + 2)  # 1.0
    slot[np.isnan(f)] = 0
    slot[f == 0] = 1
    inside = (f > 0) & (f < 1)
    slot[inside] = 2 + np.minimum(np.floor(f[inside] * FINE_BINS).astype(np.int64), FINE_BINS - 1)
    return np.bincount(slot, minlength=HISTOGRAM_LENGTH).astype(np.int64)


def summarise_histogram(counts: np.ndarray) -> dict:
    """stats.json's account of a fine histogram: counts, the BINS counts and shares, the mean fraction."""
    counts = np.asarray(counts, np.int64)
    fine = counts[2:2 + FINE_BINS]
    step = 1.0 / FINE_BINS
    per_bin = {"1.0": int(counts[-1]),
               "[0.75,1)": int(fine[round(0.75 / step):].sum()),
               "[0.5,0.75)": int(fine[round(0.5 / step):round(0.75 / step)].sum()),
               "[0.25,0.5)": int(fine[round(0.25 / step):round(0.5 / step)].sum()),
               "(0,0.25)": int(fine[:round(0.25 / step)].sum())}
    binned = sum(per_bin.values())
    centres = (np.arange(FINE_BINS) + 0.5) * step
    seen = binned + int(counts[1])
    mean = (float((fine * centres).sum() + counts[-1]) / seen) if seen else None
    return {
        "pairs_views": int(counts.sum()),
        "outside_image": int(counts[0]),
        "hidden": int(counts[1]),
        "bins": per_bin,
        "bin_shares": {k: (v / binned if binned else None) for k, v in per_bin.items()},
        "histogram_edges": [round(i * step, 6) for i in range(FINE_BINS + 1)],
        "histogram": [int(c) for c in fine],
        "unoccluded": int(counts[-1]),
        "mean_approx": mean,  # from the 0.05-wide bins' centres (0 for hidden, 1 for unoccluded)
    }
